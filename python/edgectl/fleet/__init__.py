"""The fleet: reactors publish Sparkplug B over MQTT; a site collector fills PostgreSQL.

* :class:`~edgectl.fleet.publisher.EdgePublisher` — one reactor's historian as a Sparkplug
  edge node, store and forward from a persisted cursor (``[mqtt]`` in the reactor config);
* :class:`~edgectl.fleet.collector.Collector` — ``edgectl collect``: the group into
  PostgreSQL, idempotent, with each reactor's birth/death state (``edgectl fleet status``);
* :mod:`edgectl.fleet.localsvc` — private mosquitto and PostgreSQL 15 on loopback (tests, demo).

See the README section "Fleet".
"""

from __future__ import annotations

from edgectl.fleet.config import MqttConfig

__all__ = ["MqttConfig"]
