"""Lab-standard faces of a controller (DESIGN.md part 10): the OPC UA server with the LADS
information model (OPC 30500-1), :mod:`edgectl.lab.opcua_server`.

A face holds no control logic: every read, write and method call goes through the operator
service (:mod:`edgectl.operator`) as the authenticated OPC UA user. The servers' libraries
(asyncua, cryptography; the ``lab`` extra) are imported only when a server starts.
"""

from __future__ import annotations

from edgectl.lab.config import OpcUaConfig

__all__ = ["OpcUaConfig"]
