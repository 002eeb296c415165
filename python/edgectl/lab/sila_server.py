"""The SiLA 2 server of a running controller (``[sila]``; :class:`edgectl.lab.config.SilaConfig`).

Built on the ``sila2`` package (0.14): the mandatory SiLAService (served by ``sila2`` itself),
the core AuthenticationService, AuthorizationService and LockController
(:mod:`edgectl.lab.sila_lock`), and the edgectl features whose
definitions ship in ``sila_features/`` (TemperatureController, PhController,
DissolvedOxygenController, StirrerController, PumpController, RecipeRunner,
SoftSensorProvider). Like the OPC UA face it holds no control logic: a client logs in with an
edgectl user's password (AuthenticationService.Login → access token), sends the token as
AuthorizationService metadata with every call, and every property read is an operator-service
query and every command an operator-service change as that user (authorised by role, validated,
audited; a refusal is a SiLA execution error carrying the service's message). The live values
are observable properties, read every ``publish_period_s`` and sent to the subscribers when they
change (a subscriber's read right is checked when it subscribes). The channel is
TLS with the server's certificate, generated on first start (:mod:`edgectl.lab.certs`).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from queue import Queue
from typing import Any, Final

from edgectl.errors import EdgectlError
from edgectl.lab.config import SilaConfig
from edgectl.lab.sila_lock import ServerLock, lock_controller
from edgectl.operator.changes import Change
from edgectl.operator.errors import AuthenticationError, RefusedError
from edgectl.operator.users import Identity

__all__ = ["FEATURES", "SilaLabServer"]

#: the edgectl feature definitions shipped in sila_features/
FEATURES: Final = (
    "TemperatureController",
    "PhController",
    "DissolvedOxygenController",
    "StirrerController",
    "PumpController",
    "RecipeRunner",
    "SoftSensorProvider",
)
#: commands that read and so stay open while the server is locked
_OPEN_COMMANDS: Final = frozenset({"GetEstimate"})
#: who reads the controller for the observable properties (each subscriber's read right is
#: checked when it subscribes)
_PUBLISHER: Final = Identity("sila", "viewer", "the SiLA 2 server's publisher")
#: how long a publish waits for sila2 to forward the value to the subscribers
_FORWARD_WAIT_S: Final = 2.0
_CONTROLLERS: Final = {
    "TemperatureController": "Temperature",
    "PhController": "Ph",
    "DissolvedOxygenController": "DissolvedOxygen",
}


def feature_dir() -> Path:
    """Where the shipped feature definitions are (package data)."""
    return Path(str(resources.files("edgectl.lab") / "sila_features"))


def _server_version(version: str) -> str:
    # SiLA server versions are Major.Minor[.Patch][_Details] (SiLA 2 Part B, SiLAService)
    parts = version.split(".")[:3]
    return ".".join(p if p.isdigit() else "0" for p in parts) or "0.0"


class SilaLabServer:
    """The SiLA 2 server of one run (module docstring).

    Parameters
    ----------
    service
        The run's :class:`~edgectl.operator.service.OperatorService`.
    config
        The ``[sila]`` section.
    pki
        Folder of the TLS certificate and key.
    """

    def __init__(self, service: Any, config: SilaConfig, pki: Path) -> None:
        self.service = service
        self.config = config
        self.pki = Path(pki)
        self.server: Any = None
        self.certificate: bytes = b""
        self._tokens: dict[str, tuple[Identity, datetime]] = {}
        self._lock = threading.Lock()
        #: the LockController's lock (:mod:`edgectl.lab.sila_lock`)
        self.lock = ServerLock()

    # -- identities -------------------------------------------------------------------------------

    def login(self, user: str, password: str) -> str:
        """An access token for an edgectl user (AuthenticationError when refused; audited)."""
        ident = self.service.login(user, password)
        token = str(uuid.uuid4())
        with self._lock:
            self._tokens[token] = (
                Identity(ident.name, ident.role, "SiLA 2 password", ident.full_name),
                datetime.now() + timedelta(seconds=self.config.token_lifetime_s),
            )
        return token

    def logout(self, token: str) -> bool:
        """Forget an access token; False when it was not known."""
        with self._lock:
            return self._tokens.pop(token, None) is not None

    def identity(self, token: str) -> Identity:
        """The identity of an access token (AuthenticationError when unknown or expired)."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is not None and entry[1] < datetime.now():
                del self._tokens[token]
                entry = None
        if entry is None:
            raise AuthenticationError(
                "SiLA 2: unknown or expired access token: log in with AuthenticationService.Login",
                rule="authentication",
            )
        return entry[0]

    def _may_lock(self, ident: Identity) -> None:
        if not self.service.config.rights_of(ident.role) - {"read"}:
            raise RefusedError(
                f"SiLA 2: user {ident.name} (role {ident.role}) may not lock the server: the role"
                " has no right to change anything",
                rule="rights",
                user=ident.name,
            )

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> SilaLabServer:
        """Serve (TLS) until :meth:`close`."""
        _check_protobuf_implementation()
        from sila2.features.authenticationservice import AuthenticationServiceFeature
        from sila2.features.authorizationservice import AuthorizationServiceFeature
        from sila2.features.lockcontroller import LockControllerFeature
        from sila2.framework import Feature
        from sila2.server import SilaServer

        from edgectl import __version__
        from edgectl.lab.certs import ensure_tls_certificate

        name = str(self.service.controller.name)
        server_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:edgectl:{name}:sila")
        server = SilaServer(
            server_name=f"edgectl {name}"[:255],
            server_type="BioreactorController",
            server_description=f"edgectl bench bioreactor controller {name}",
            server_version=_server_version(__version__),
            server_vendor_url="https://github.com/edgectl/edgectl",
            server_uuid=server_uuid,
        )
        features = [Feature(str(feature_dir() / f"{f}.sila.xml")) for f in FEATURES]
        server.set_feature_implementation(
            AuthenticationServiceFeature, _authentication(server, self)
        )
        for feature in features:
            server.set_feature_implementation(feature, _implementation(server, self, feature))
        server.set_feature_implementation(
            AuthorizationServiceFeature,
            _authorization(server, self, [*features, LockControllerFeature]),
        )
        protected = [
            command
            for feature in features
            for name, command in feature._unobservable_commands.items()
            if name not in _OPEN_COMMANDS
        ]
        server.set_feature_implementation(
            LockControllerFeature,
            lock_controller(
                server,
                self.lock,
                protected,
                self._may_lock,
                lambda metadata: self.identity(_token_of(metadata)),
            ),
        )
        cert, key = ensure_tls_certificate(
            self.pki, f"edgectl-{name}-sila", [self.config.host], str(server_uuid)
        )
        self.certificate = cert
        server.start(
            self.config.host,
            self.config.port,
            private_key=key,
            cert_chain=cert,
            enable_discovery=False,
        )
        self.server = server
        return self

    def close(self) -> None:
        """Stop serving (idempotent)."""
        if self.server is not None and self.server.running:
            self.server.stop(grace_period=2.0)
        self.server = None

    # -- what the features do ---------------------------------------------------------------------

    def _tag(self, ident: Identity, tag: str) -> dict[str, Any]:
        got: dict[str, Any] = self.service.query(ident, "read_tags", names=[tag])[tag]
        return got

    def _value(self, ident: Identity, tag: str) -> float:
        v = self._tag(ident, tag)["value"]
        return float(v) if v is not None else math.nan

    def _loop(self, feature: str) -> str:
        loop = self.config.loops.get(feature)
        if loop is None:
            raise EdgectlError(f"[sila] loops: no loop for {feature}")
        return loop

    def _change(self, ident: Identity, change: Change, what: str) -> None:
        self.service.change(ident, change, reason=f"SiLA 2 {what}")

    def properties(self, feature: str) -> dict[str, Callable[[Identity], Any]]:
        """The property getters of ``feature`` (each a service query as the caller)."""
        if feature in _CONTROLLERS:
            q = _CONTROLLERS[feature]

            def settings(i: Identity) -> dict[str, Any]:
                got: dict[str, Any] = self.service.query(i, "loop_get", loop=self._loop(feature))
                return got

            def current(i: Identity) -> float:
                v = settings(i).get("pv_value")
                return float(v) if v is not None else math.nan

            return {
                f"Current{q}": current,
                f"{q}Quality": lambda i: str(settings(i).get("pv_quality", "bad")),
                f"Target{q}": lambda i: float(settings(i)["setpoint"]),
                "ControllerMode": lambda i: str(settings(i)["mode"]),
            }
        tags = self.config.tags
        if feature == "StirrerController":
            return {"CurrentSpeed": lambda i: self._value(i, tags["stirrer"])}
        if feature == "PumpController":
            return {
                "FeedRate": lambda i: self._value(i, tags["feed"]),
                "BaseRate": lambda i: self._value(i, tags["base"]),
                "FeedMode": lambda i: str(
                    self.service.query(i, "loop_get", loop=self._loop(feature))["mode"]
                ),
            }
        if feature == "RecipeRunner":
            recipe = self.service.controller.cfg.recipe
            phases = [p.name for p in recipe.phases] if recipe is not None else []
            return {
                "CurrentPhase": lambda i: str(self.service.query(i, "info")["phase"]),
                "Phases": lambda i: list(phases),
            }
        if feature == "SoftSensorProvider":
            return {
                "EstimateTags": lambda i: [
                    str(s["tag"]) for s in self.service.query(i, "softsensor_status").values()
                ],
                "Estimates": lambda i: [
                    (str(s["tag"]), *self._estimate(i, str(s["tag"])))
                    for s in self.service.query(i, "softsensor_status").values()
                ],
            }
        raise EdgectlError(f"unknown SiLA feature {feature}")

    def commands(self, feature: str) -> dict[str, Callable[..., Any]]:
        """The commands of ``feature`` (each an operator-service change as the caller)."""
        if feature in _CONTROLLERS:
            q = _CONTROLLERS[feature]
            loop = self._loop(feature)
            return {
                f"SetTarget{q}": lambda i, v: self._change(
                    i, Change.setpoint(loop, v), f"{feature}.SetTarget{q}"
                ),
                "StartControl": lambda i: self._change(
                    i, Change.loop(loop, "mode", "auto"), f"{feature}.StartControl"
                ),
                "StopControl": lambda i: self._change(
                    i, Change.loop(loop, "mode", "off"), f"{feature}.StopControl"
                ),
            }
        if feature == "PumpController":
            loop = self._loop(feature)
            return {
                "StartFeed": lambda i: self._change(
                    i, Change.loop(loop, "mode", "auto"), "PumpController.StartFeed"
                ),
                "StopFeed": lambda i: self._change(
                    i, Change.loop(loop, "mode", "off"), "PumpController.StopFeed"
                ),
            }
        if feature == "RecipeRunner":
            return {
                "RequestPhase": lambda i, to: self._change(
                    i, Change.phase(str(to)), "RecipeRunner.RequestPhase"
                )
            }
        if feature == "SoftSensorProvider":
            return {"GetEstimate": self._estimate}
        return {}

    def _estimate(self, ident: Identity, tag: str) -> tuple[float, bool, str]:
        for status in self.service.query(ident, "softsensor_status").values():
            if status["tag"] == tag:
                last = status.get("last") or {}
                value = self._value(ident, tag)
                return value, last.get("status") == "in_model", str(status.get("model", ""))
        raise EdgectlError(f"no soft-sensor estimate {tag!r}")


class _ProducerQueue(Queue[Any]):
    """The producer queue of an observable property. sila2's subscription manager takes an
    item, forwards it to every subscriber, stores it as the last value, then asks for the next
    one; :meth:`publish` waits for that next ask, so a subscriber that comes after a publish
    gets the published value first."""

    def __init__(self) -> None:
        super().__init__()
        self._asked = threading.Condition()
        self._asks = 0
        self._puts = 0
        self._closed = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, StopIteration):  # sila2 stops the subscription manager
            with self._asked:
                self._closed = True
                self._asked.notify_all()
        super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._asked:
            self._asks += 1
            self._asked.notify_all()
        return super().get(block, timeout)

    def publish(self, value: Any, wait_s: float) -> None:
        """Put ``value`` and wait (up to ``wait_s``) until it was forwarded."""
        with self._asked:
            self._puts += 1
            n = self._puts
        self.put(value)
        with self._asked:
            self._asked.wait_for(lambda: self._closed or self._asks > n, timeout=wait_s)


def _same(a: Any, b: Any) -> bool:
    """Equal values, NaN equal to NaN (a bad reading stays one until it changes)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _token_of(metadata: Any) -> str:
    from sila2.features.authorizationservice import AuthorizationServiceFeature

    try:
        return str(metadata[AuthorizationServiceFeature["AccessToken"]])
    except KeyError:
        raise AuthenticationError(
            "SiLA 2: the AccessToken metadata (AuthorizationService) is missing",
            rule="authentication",
        ) from None


def _implementation(server: Any, owner: SilaLabServer, feature: Any) -> Any:
    from sila2.server import FeatureImplementationBase

    class Implementation(FeatureImplementationBase):
        """One edgectl feature: ``get_<Property>`` and ``<Command>`` as the sila2 servicer
        calls them, each resolved to the caller's identity and handed to the operator
        service. An observable property has the producer queue and ``<Property>_on_subscription``
        the servicer asks for: every ``publish_period_s`` the values are read (as the
        publisher) and a changed one is put on its queue, which sila2 sends to every
        subscriber (and the last value to a new one)."""

        def __init__(self, parent_server: Any) -> None:
            super().__init__(parent_server=parent_server)
            name = feature._identifier
            self._props = owner.properties(name)
            self._cmds = owner.commands(name)
            self._observed = list(feature._observable_properties)
            self._last: dict[str, Any] = {}
            self._queues = {prop: _ProducerQueue() for prop in self._observed}
            self._publishing = threading.Lock()
            for prop in self._observed:
                setattr(self, f"_{prop}_producer_queue", self._queues[prop])
                setattr(self, f"{prop}_on_subscription", self._subscriber_check(prop))
            if self._observed:
                self.run_periodically(self._publish, owner.config.publish_period_s)

        def _subscriber_check(self, prop: str) -> Callable[..., None]:
            getter = self._props[prop]

            def on_subscription(*, metadata: Any) -> None:
                # the subscriber reads once as itself (refused without the read right), and
                # that value is published before sila2 hands the new subscriber the last one
                self._put(prop, getter(owner.identity(_token_of(metadata))))
                # None: the shared producer queue

            return on_subscription

        def _put(self, prop: str, value: Any) -> None:
            with self._publishing:
                if prop in self._last and _same(self._last[prop], value):
                    return
                self._last[prop] = value
                self._queues[prop].publish(value, _FORWARD_WAIT_S)

        def _publish(self) -> None:
            for prop in self._observed:
                try:
                    value = self._props[prop](_PUBLISHER)
                except (EdgectlError, KeyError, ValueError, TypeError):
                    continue  # the run is stopping, or a value is missing: keep the last one
                self._put(prop, value)

        def __getattr__(self, attr: str) -> Any:
            props = self.__dict__.get("_props", {})
            cmds = self.__dict__.get("_cmds", {})
            if attr.startswith("get_") and attr[4:] in props:
                getter = props[attr[4:]]

                def get(*, metadata: Any) -> Any:
                    return getter(owner.identity(_token_of(metadata)))

                return get
            if attr in cmds:
                run = cmds[attr]
                responses = feature._unobservable_commands[attr].responses

                def call(*params: Any, metadata: Any) -> Any:
                    out = run(owner.identity(_token_of(metadata)), *params)
                    self._publish()  # subscribers see the change now, not a period later
                    return responses.namedtuple_type(*out) if responses.fields else None

                return call
            raise AttributeError(attr)

    return Implementation(server)


def _authentication(server: Any, owner: SilaLabServer) -> Any:
    from sila2.features.authenticationservice import (
        AuthenticationFailed,
        AuthenticationServiceBase,
        InvalidAccessToken,
        Login_Responses,
        Logout_Responses,
    )

    class Authentication(AuthenticationServiceBase):
        """Login with an edgectl user's password (the failure is audited by the service)."""

        def Login(
            self,
            UserIdentification: str,
            Password: str,
            RequestedServer: str,
            RequestedFeatures: list[str],
            *,
            metadata: Any,
        ) -> Any:
            if str(RequestedServer) != str(self.parent_server.server_uuid):
                raise AuthenticationFailed
            try:
                token = owner.login(UserIdentification, Password)
            except AuthenticationError:
                raise AuthenticationFailed from None
            return Login_Responses(token, owner.config.token_lifetime_s)

        def Logout(self, AccessToken: str, *, metadata: Any) -> Any:
            if not owner.logout(AccessToken):
                raise InvalidAccessToken
            return Logout_Responses()

    return Authentication(server)


def _authorization(server: Any, owner: SilaLabServer, features: list[Any]) -> Any:
    from sila2.features.authorizationservice import (
        AuthorizationServiceBase,
        AuthorizationServiceFeature,
        InvalidAccessToken,
    )
    from sila2.server import MetadataInterceptor

    class Check(MetadataInterceptor):
        def intercept(self, parameters: Any, metadata: Any, target_call: Any) -> None:
            try:
                owner.identity(str(metadata[AuthorizationServiceFeature["AccessToken"]]))
            except (KeyError, AuthenticationError):
                raise InvalidAccessToken from None

    class Authorization(AuthorizationServiceBase):
        def __init__(self, parent_server: Any) -> None:
            super().__init__(parent_server=parent_server)
            parent_server.add_metadata_interceptor(
                Check([AuthorizationServiceFeature["AccessToken"]])
            )

        def get_calls_affected_by_AccessToken(self) -> list[Any]:
            return list(features)

    return Authorization(server)


def _check_protobuf_implementation() -> None:
    """sila2 0.14 needs protobuf's pure-Python implementation: it sets
    ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` when it is imported and then loads its
    framework descriptors more than once, which the default (upb) pool refuses as a "duplicate
    file name". If protobuf was imported before sila2 in this process (the fleet publisher's
    Sparkplug B classes), say so instead of failing inside sila2."""
    import os
    import sys

    if "sila2" in sys.modules or "google.protobuf" not in sys.modules:
        os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        return
    from google.protobuf.internal import api_implementation

    if api_implementation.Type() != "python":
        raise EdgectlError(
            "[sila]: the SiLA 2 server (sila2) needs protobuf's pure-Python implementation, but"
            f" protobuf was loaded first with {api_implementation.Type()!r}: set"
            " PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python in the controller's environment"
        )
