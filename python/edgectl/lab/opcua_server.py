"""The OPC UA LADS server of a running controller (``[opcua]``; :mod:`edgectl.lab.config`).

A face of the operator service, nothing more: the address space (:mod:`.lads_model`) is filled
from the service's queries, and every write of a TargetValue and every method call becomes one
:meth:`OperatorService.change` as the session's edgectl user, so it is authorised by role,
validated against the config's limits and audited before it acts. A refusal is a Bad status:
``BadUserAccessDenied`` (rights, e-signature), ``BadOutOfRange`` (limits), ``BadInvalidState``
(the run is stopping), ``BadInvalidArgument`` (a missing comment or signature meaning), the
OPC 10000-9 codes for the condition methods (:mod:`.lads_methods`), and the refusal is in the
audit trail with the rule. ``FunctionalUnitState.SignedStop(Password, Meaning, Reason)`` (edgectl
namespace) is the service's ``stop`` with an e-signature: what the REPL and the dashboard send.

Security (OPC 10000-2 §4, 10000-4 §5.6): endpoints Basic256Sha256 Sign and SignAndEncrypt only
(no unsecured endpoint), the server's certificate generated on first start (:mod:`.certs`), a
client certificate accepted only when it is in ``<pki>/trusted/`` (its exact bytes), users by
username/password of the operator service's users file; anonymous sessions only when
``anonymous_read`` (then as viewers).

The server runs on its own thread and asyncio loop; :meth:`OpcUaServer.start` returns once it
listens. Values are copied into the address space every ``publish_period_s``; a subscribed
client is notified by asyncua's subscription service.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from edgectl.errors import AlarmStateError, EdgectlError
from edgectl.lab.config import OpcUaConfig
from edgectl.lab.lads_alarms import AlarmConditions
from edgectl.lab.lads_counters import COUNTERS_STATE, RunRecord
from edgectl.lab.lads_methods import ConditionMethods
from edgectl.lab.lads_model import (
    ControlSpec,
    LadsNodes,
    ReactorSpec,
    SensorSpec,
    build_address_space,
    load_nodesets,
    unit_of,
)
from edgectl.lab.opcua_access import TargetWrites, UserManager
from edgectl.operator.changes import Change
from edgectl.operator.errors import AuthenticationError, RefusedError, RunStoppedError
from edgectl.operator.users import Identity

__all__ = ["OpcUaServer"]

_log = logging.getLogger(__name__)
#: the asyncua user of the request being served (set by the permission check of each request)
_CALLER: contextvars.ContextVar[Any] = contextvars.ContextVar("edgectl_opcua_caller")
_PUBLISHER: Final = Identity("opcua", "viewer", "the OPC UA server's publisher")
_ANONYMOUS: Final = Identity("anonymous", "viewer", "OPC UA anonymous session (read only)")
#: AlarmStateError.why → the status code name of OPC 10000-9
_ALARM_STATE_CODES: Final = {
    "disabled": "BadConditionDisabled",
    "already_enabled": "BadConditionAlreadyEnabled",
    "already_disabled": "BadConditionAlreadyDisabled",
    "not_shelved": "BadConditionNotShelved",
    "already_shelved": "BadConditionAlreadyShelved",
    "not_acked": "BadInvalidState",
    "already_confirmed": "BadConditionBranchAlreadyConfirmed",
}
#: how often (wall seconds) the operation counters are saved in the historian's state table
_COUNTERS_SAVE_PERIOD_S: Final = 5.0


def _status_of_refusal(exc: Exception) -> int:
    from asyncua import ua

    if isinstance(exc, RunStoppedError):
        return int(ua.StatusCodes.BadInvalidState)
    if isinstance(exc, AuthenticationError):
        return int(ua.StatusCodes.BadIdentityTokenRejected)
    if isinstance(exc, RefusedError):
        cause = exc.__cause__
        if isinstance(cause, AlarmStateError):  # the alarm's state (OPC 10000-9 codes)
            return int(getattr(ua.StatusCodes, _ALARM_STATE_CODES[cause.why]))
        if exc.rule in ("limits", "validation"):
            return int(ua.StatusCodes.BadOutOfRange)
        if exc.rule in ("comment", "reason", "meaning"):
            return int(ua.StatusCodes.BadInvalidArgument)
        if exc.rule == "apply":
            return int(ua.StatusCodes.BadInvalidState)
        return int(ua.StatusCodes.BadUserAccessDenied)
    return int(ua.StatusCodes.BadInvalidArgument)


def _quality_status(quality: str) -> Any:
    """The StatusCode of a tag quality (OPC 10000-4 §7.39): stale → UncertainLastUsableValue."""
    from asyncua import ua

    code = {
        "good": ua.StatusCodes.Good,
        "uncertain": ua.StatusCodes.Uncertain,
        "stale": ua.StatusCodes.UncertainLastUsableValue,
    }.get(quality, ua.StatusCodes.Bad)
    return ua.StatusCode(code)


class OpcUaServer:
    """The OPC UA LADS server of one run (module docstring).

    Parameters
    ----------
    service
        The run's :class:`~edgectl.operator.service.OperatorService`.
    config
        The ``[opcua]`` section.
    pki
        Folder of the server certificate and ``trusted/`` client certificates.
    cache_dir
        Folder of the standard address-space cache (:mod:`.opcua_cache`); default ``<pki>``'s
        sibling ``<name>.opcua-cache``. Unused when ``config.address_space_cache`` is false.
    """

    def __init__(
        self, service: Any, config: OpcUaConfig, pki: Path, cache_dir: Path | None = None
    ) -> None:
        self.service = service
        self.config = config
        self.pki = Path(pki)
        self.cache_dir = Path(cache_dir) if cache_dir else self.pki.with_suffix(".opcua-cache")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._identities: dict[str, Identity] = {}
        self.nodes: LadsNodes | None = None
        self.alarms: AlarmConditions | None = None
        self.port = config.port
        self.record = RunRecord(service.controller.name, self.application_uri)

    @property
    def endpoint(self) -> str:
        """The server's endpoint URL."""
        return f"opc.tcp://{self.config.host}:{self.port}/edgectl/"

    @property
    def application_uri(self) -> str:
        return f"urn:edgectl:{self.service.controller.name}:opcua"

    # -- life -------------------------------------------------------------------------------------

    def start(self, timeout_s: float = 300.0) -> OpcUaServer:
        """Start the server thread; return once it listens (raise what stopped it)."""
        self._thread = threading.Thread(target=self._main, name="opcua-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise EdgectlError(f"OPC UA server at {self.endpoint}: not started in {timeout_s} s")
        if self._error is not None:
            raise EdgectlError(f"OPC UA server at {self.endpoint}: {self._error}") from self._error
        return self

    def close(self) -> None:
        """Stop serving (idempotent)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30.0)
            self._thread = None

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(); logged when it is too late for that
            if not self._ready.is_set():
                _log.error("OPC UA server at %s: not started", self.endpoint, exc_info=exc)
                self._error = exc
                self._ready.set()
            else:
                _log.exception("OPC UA server stopped")

    async def _serve(self) -> None:
        from asyncua import Server, ua

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = Server(user_manager=UserManager(self))
        if self.config.address_space_cache:
            from edgectl.lab.opcua_cache import prepare, seal

            shelf = await asyncio.to_thread(prepare, self.cache_dir)
            await server.init(shelf)
            await asyncio.to_thread(seal, shelf)
        else:
            await server.init()
        await self._secure(server)
        await load_nodesets(server)
        self.nodes = await build_address_space(server, self._spec())
        # condition events go to subscriptions of the Server object, the device and the unit
        notifiers = [
            ua.NodeId(ua.ObjectIds.Server),
            self.nodes.device.nodeid,
            self.nodes.unit.nodeid,
        ]
        self.alarms = AlarmConditions(server, self.nodes.conditions, notifiers)
        await self.alarms.link()
        self._link(server, self.nodes)
        ConditionMethods(self, self.alarms).link(server, self.nodes.ns)
        self.record.resume(self._historian_state())
        await self._publish(server, self.nodes)
        await server.start()
        self.port = int(server.bserver.port) if server.bserver is not None else self.port
        self._ready.set()
        saved = loop_time = self._loop.time()
        try:
            while not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), self.config.publish_period_s)
                except TimeoutError:
                    await self._publish(server, self.nodes)
                    loop_time = self._loop.time()
                    if loop_time - saved >= _COUNTERS_SAVE_PERIOD_S:
                        saved = loop_time
                        self._save_counters()
        finally:
            self._save_counters()
            await server.stop()

    async def _secure(self, server: Any) -> None:
        from asyncua import ua
        from asyncua.crypto.permission_rules import SimpleRoleRuleset

        from edgectl.lab.certs import ensure_certificate

        cfg = self.config
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"edgectl {self.service.controller.name}")
        await server.set_application_uri(self.application_uri)
        cert, key = ensure_certificate(
            self.pki, self.application_uri, f"edgectl {self.service.controller.name}", [cfg.host]
        )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        policies = {
            "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
        }

        class Ruleset(SimpleRoleRuleset):
            """asyncua's role rules, remembering each request's user for the method handlers."""

            def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
                _CALLER.set(user)
                return bool(super().check_validity(user, action_type_id, body))

        server.set_security_policy(
            [policies[m] for m in cfg.security], permission_ruleset=Ruleset()
        )
        tokens: list[type] = [ua.UserNameIdentityToken]
        if cfg.anonymous_read:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        server.set_certificate_validator(self._validate_client)
        # writes of TargetValue nodes go through the operator service (with the session's user)
        server.iserver.attribute_service = TargetWrites(self, server.iserver.attribute_service)

    async def _validate_client(self, cert: Any, app: Any) -> None:
        """A client certificate is trusted when its exact bytes are in ``<pki>/trusted/`` (the
        OPC UA trust list of self-signed application certificates, OPC 10000-4 §6.1.3)."""
        from asyncua import ua
        from asyncua.common.utils import ServiceError
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        der = cert.public_bytes(Encoding.DER)
        for path in sorted((self.pki / "trusted").glob("*")):
            data = path.read_bytes()
            try:
                other = (
                    x509.load_pem_x509_certificate(data)
                    if data.lstrip().startswith(b"-----")
                    else x509.load_der_x509_certificate(data)
                )
            except ValueError:
                _log.warning("%s: not a certificate (PEM or DER): ignored", path)
                continue
            if other.public_bytes(Encoding.DER) == der:
                return
        _log.warning(
            "OPC UA client %r refused: its certificate (%s) is not in %s",
            getattr(app, "ApplicationUri", "?"),
            cert.subject.rfc4514_string(),
            self.pki / "trusted",
        )
        raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    # -- identities -------------------------------------------------------------------------------

    def login(self, username: str | None, password: str | None) -> Identity | None:
        """The identity of a session (None: refused; the failure is audited by the service)."""
        if not username:
            return _ANONYMOUS if self.config.anonymous_read else None
        try:
            ident = self.service.login(username, password or "")
        except AuthenticationError:
            return None
        ident = Identity(ident.name, ident.role, "OPC UA password", ident.full_name)
        self._identities[ident.name] = ident
        return ident

    def identity_of(self, user: Any) -> Identity:
        name = getattr(user, "name", None)
        if name and name in self._identities:
            return self._identities[name]
        if self.config.anonymous_read:
            return _ANONYMOUS
        raise AuthenticationError("OPC UA session without a user", rule="authentication")

    # -- the address space -----------------------------------------------------------------------

    def _spec(self) -> ReactorSpec:
        from edgectl import __version__

        svc = self.service
        ctl = svc.controller
        cfg = ctl.cfg
        tags = svc.query(_PUBLISHER, "read_tags")
        controls: list[ControlSpec] = []
        for loop in svc.query(_PUBLISHER, "loop_names"):
            s = svc.query(_PUBLISHER, "loop_get", loop=loop)
            outs = [o for o in s.get("outputs", []) if o in cfg.outputs]
            has_sp = "setpoint" in s and bool(s.get("pv"))
            value_tag = s["pv"] if has_sp else (outs[0] if outs else "")
            if not value_tag or value_tag not in tags:
                continue
            limits = svc.config.loops.get(loop)
            sp_range = limits.setpoint if limits is not None and limits.setpoint else None
            value_range = None
            if not has_sp and outs:
                o = cfg.outputs[outs[0]]
                value_range = (float(o.min), float(o.max))
            controls.append(
                ControlSpec(
                    loop=loop,
                    value_tag=value_tag,
                    unit=unit_of(value_tag, tags[value_tag]["unit"]),
                    target=has_sp,
                    target_range=sp_range,
                    value_range=value_range,
                )
            )
        soft = {
            st["tag"]: (name, str(st.get("model", "")))
            for name, st in svc.query(_PUBLISHER, "softsensor_status").items()
        }
        measured = set(cfg.tags) | {t for d in cfg.devices.values() for t in d.readings.values()}
        measured |= set(soft) | {o for o in cfg.outputs if o in tags}
        sensors = tuple(
            SensorSpec(tag, unit_of(tag, tags[tag]["unit"]), *soft.get(tag, ("", "")))
            for tag in sorted(measured)
            if tag in tags
        )
        phases = tuple(p.name for p in cfg.recipe.phases) if cfg.recipe is not None else ()
        with ctl.lock:  # the alarm definitions (static: read once)
            alarms = tuple((name, a.spec) for name, a in ctl.alarm_mgr.alarms.items())
        return ReactorSpec(
            name=ctl.name,
            manufacturer=self.config.manufacturer,
            model=self.config.model,
            serial_number=self.config.serial_number or ctl.name,
            software_revision=__version__,
            phases=phases,
            controls=tuple(controls),
            sensors=sensors,
            alarms=alarms,
            max_shelve_s=svc.config.max_shelve_s,
        )

    async def _publish(self, server: Any, nodes: LadsNodes) -> None:
        """Copy the controller's tags, setpoints and state into the address space."""
        from asyncua import ua

        svc = self.service
        try:
            tags = svc.query(_PUBLISHER, "read_tags")
            info = svc.query(_PUBLISHER, "info")
            loops = {
                loop: svc.query(_PUBLISHER, "loop_get", loop=loop) for loop in nodes.loop_states
            }
            soft = svc.query(_PUBLISHER, "softsensor_status") if nodes.soft else {}
            alarms = {r["name"]: r for r in svc.query(_PUBLISHER, "alarm_conditions")}
            recipe = (
                svc.query(_PUBLISHER, "recipe_status") if self.record.stale(info["phase"]) else None
            )
        except (EdgectlError, KeyError):
            await self._write(server, nodes.unit_state, ua.LocalizedText("Stopped"))
            return
        now = dt.datetime.now(dt.UTC)  # the source timestamp: when the tag store was read
        for tag, value_nodes in nodes.tag_nodes.items():
            t = tags.get(tag)
            if t is None:
                continue
            v = t["value"]
            dv = ua.DataValue(
                ua.Variant(float(v) if v is not None else math.nan, ua.VariantType.Double),
                StatusCode=_quality_status(t["quality"]),
                SourceTimestamp=now,
                ServerTimestamp=now,
            )
            for node in value_nodes:
                await server.write_attribute_value(node.nodeid, dv)
        for loop, node in nodes.loop_states.items():
            running = loops[loop].get("mode") in ("auto", "manual")
            await self._write(server, node, ua.LocalizedText("Running" if running else "Stopped"))
        for loop, node in nodes.targets.items():
            sp = loops[loop].get("setpoint")
            if sp is not None:
                dv = ua.DataValue(ua.Variant(float(sp), ua.VariantType.Double))
                await server.write_attribute_value(node.nodeid, dv)
        for st in soft.values():
            pair = nodes.soft.get(st["tag"])
            last = st.get("last") or {}
            if pair is not None:
                valid = last.get("status") == "in_model"  # the estimate is inside the model
                await self._write(server, pair[0], valid)
        state = "Stopping" if info.get("stopping") else "Running"
        await self._write(server, nodes.unit_state, ua.LocalizedText(state))
        await self._write(server, nodes.active_step, ua.LocalizedText(str(info.get("phase", ""))))
        if self.alarms is not None:
            await self.alarms.sync(alarms, tags)
        await self.record.publish(server, nodes, info, recipe)

    async def _write(self, server: Any, node: Any, value: Any) -> None:
        from asyncua import ua

        if node is not None:
            await server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value)))

    # -- writes and methods -----------------------------------------------------------------------

    def _link(self, server: Any, nodes: LadsNodes) -> None:
        for nodeid, (what, name) in nodes.methods.items():
            server.link_method(server.get_node(nodeid), self._handler(what, name))

    # what the condition methods (edgectl.lab.lads_methods) use
    def caller(self) -> Any:
        """The asyncua user of the request being served."""
        return _CALLER.get(None)

    def status_of(self, exc: Exception) -> int:
        return _status_of_refusal(exc)

    def change(self, ident: Identity, change: Change, reason: str) -> int | None:
        """One operator change: None when applied, else the Bad status of the refusal."""
        return self._change(ident, change, reason)

    async def resync(self) -> None:
        """Read the alarms into the conditions again (after a condition method applied)."""
        if self.alarms is None:
            return
        try:
            rows = {r["name"]: r for r in self.service.query(_PUBLISHER, "alarm_conditions")}
        except EdgectlError:
            return
        await self.alarms.sync(rows, None)

    # the operation counters, kept in the historian's state table over restarts
    def _historian_state(self) -> Any:
        try:
            return self.service.controller.historian.load_state(COUNTERS_STATE)
        except EdgectlError as exc:
            _log.warning("OPC UA operation counters not read (start from 0): %s", exc)
            return None

    def _save_counters(self) -> None:
        snapshot = self.record.snapshot()
        if snapshot is None:
            return
        try:
            self.service.controller.historian.save_state(COUNTERS_STATE, snapshot)
        except EdgectlError as exc:
            _log.warning("OPC UA operation counters not saved: %s", exc)

    def _handler(self, what: str, name: str) -> Any:
        async def handle(parent: Any, *args: Any) -> Any:
            return await self.call(_CALLER.get(None), what, name, [a.Value for a in args])

        return handle

    async def call(self, user: Any, what: str, name: str, args: list[Any]) -> Any:
        """One method call as the session's user: a change through the operator service."""
        from asyncua import ua

        try:
            ident = self.identity_of(user)
            change = _method_change(what, name, args)
        except (EdgectlError, ValueError, TypeError) as exc:
            return ua.StatusCode(_status_of_refusal(exc))
        reason = f"OPC UA {what}.{name}"
        signature = None
        if name == "SignedStop":
            if len(args) != 3 or not all(isinstance(a, str) for a in args):
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            password, meaning, why = args
            signature = {"password": password, "meaning": meaning}
            # no reason given stays none: the service requires one for a signed change
            reason = f"OPC UA SignedStop: {why.strip()}" if why.strip() else ""
        status = await asyncio.to_thread(self._change, ident, change, reason, signature)
        if status is not None:
            return ua.StatusCode(status)
        if what.startswith("loop:") and name == "StartWithTargetValue":
            follow = Change.loop(what[5:], "mode", "auto")
            status = await asyncio.to_thread(self._change, ident, follow, reason)
            if status is not None:
                return ua.StatusCode(status)
        return []

    def _change(
        self,
        ident: Identity,
        change: Change,
        reason: str,
        signature: Mapping[str, Any] | None = None,
    ) -> int | None:
        """None when applied, else the Bad status of the refusal."""
        try:
            self.service.change(ident, change, reason=reason, signature=signature)
        except (EdgectlError, KeyError, ValueError, TypeError) as exc:
            _log.info("OPC UA %s by %s refused: %s", change.target, ident.name, exc)
            return _status_of_refusal(exc)
        return None

    def write_target(self, user: Any, loop: str, value: Any) -> int | None:
        """A TargetValue write: the loop's setpoint, as the session's user."""
        try:
            ident = self.identity_of(user)
        except EdgectlError as exc:
            return _status_of_refusal(exc)
        return self._change(ident, Change.setpoint(loop, value), "OPC UA TargetValue write")


def _method_change(what: str, name: str, args: list[Any]) -> Change:
    if what == "unit":
        if name in ("Stop", "Abort", "SignedStop"):
            return Change.stop()
        if name == "StartProgram":
            if not args or not isinstance(args[0], str):
                raise ValueError("StartProgram needs the phase name (String)")
            return Change.phase(args[0])
        raise RunStoppedError("Start: the run is started by `edgectl run`; the unit is Running")
    loop = what.removeprefix("loop:")
    if name == "Start":
        return Change.loop(loop, "mode", "auto")
    if name == "Stop":
        return Change.loop(loop, "mode", "off")
    if name == "StartWithTargetValue":
        if not args:
            raise ValueError("StartWithTargetValue needs the target value (Double)")
        return Change.setpoint(loop, args[0])
    raise ValueError(f"unknown method {name!r}")
