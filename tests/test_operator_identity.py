"""Identity and durability of operator changes: the socket peer's OS user from SO_PEERCRED
(a real Unix socket, a real other user), the users file and its CLI, and an audited change that
survives kill -9 and is in force after resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from _runs import ECOLI, connect_run, start_run, wait_for_state
from edgectl.cli import main as cli_main
from edgectl.errors import ConfigError
from edgectl.historian import HistoryReader
from edgectl.operator import UserStore
from edgectl.runtime.rpc import RpcClient, RpcServer

CONFIG = ECOLI
NOBODY = 65534


def test_users_file_is_private_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.users"
    store = UserStore(path)
    store.add("alice", "engineer", "s3cret-enough", full_name="Alice Martin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret" not in path.read_text()
    assert store.check_password("alice", "s3cret-enough") is not None
    assert store.check_password("alice", "wrong-password") is None
    assert store.check_password("nobody", "s3cret-enough") is None
    with pytest.raises(ConfigError, match="not valid"):
        store.add("QA-approver (e-signed)", "admin", "s3cret-enough")
    with pytest.raises(ConfigError, match="at least 8"):
        store.add("bob", "viewer", "short")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"mode 0644.*readable by its owner only"):
        UserStore(path).get("alice")


def test_users_cli_adds_lists_and_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "u.users"
    old_stdin = sys.stdin
    sys.stdin = __import__("io").StringIO("a long password\n")
    try:
        rc = cli_main(
            [
                "users",
                "add",
                "carol",
                "--role",
                "operator",
                "--file",
                str(path),
                "--password-stdin",
                "--full-name",
                "Carol Q",
            ]
        )
    finally:
        sys.stdin = old_stdin
    assert rc == 0
    assert UserStore(path).check_password("carol", "a long password") is not None
    assert cli_main(["users", "list", "--file", str(path)]) == 0
    assert "carol" in capsys.readouterr().out
    assert cli_main(["users", "remove", "carol", "--file", str(path)]) == 0
    assert UserStore(path).users() == []
    data = json.loads(path.read_text())
    assert data == {"version": 1, "users": {}}


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another OS user")
def test_identity_comes_from_so_peercred_of_a_real_other_user(tmp_path: Path) -> None:
    import tomllib

    from edgectl.config import to_toml_text
    from edgectl.runtime.build import open_run

    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data["operator"] = {"os_users": {"nobody": "vic"}}
    cfg = tmp_path / "reactor.toml"
    cfg.write_text(to_toml_text(data), encoding="utf-8")
    UserStore(tmp_path / "run.users").add("vic", "viewer", "vic's password")
    run = open_run(cfg, speed=600.0, db=tmp_path / "run.db", serve_rpc=False)
    sock_dir = Path(tempfile.mkdtemp(prefix="edgectl-peer-"))  # /tmp: reachable by nobody
    sock_dir.chmod(0o755)
    sock = sock_dir / "r.sock"
    server = RpcServer(sock, run.controller.operator).start()
    try:
        sock.chmod(0o666)  # let the other user reach the socket at all
        me = RpcClient(sock)
        who = me.call("whoami")
        me.close()
        assert who["name"] == "root"
        assert who["role"] == "admin"
        assert "peer uid 0" in who["source"]
        out = _as_nobody(sock)
        assert out["whoami"]["name"] == "vic"
        assert out["whoami"]["role"] == "viewer"
        assert f"peer uid {NOBODY} (nobody)" in out["whoami"]["source"]
        assert out["stop"].startswith("RefusedError: run: user vic (role viewer) has no right")
        assert not run.controller.stopped.is_set()
        [refused] = [a for a in run.historian.audit.records() if a.action == "refused"]
        assert (refused.actor, refused.target) == ("vic", "run")
    finally:
        server.close()
        run.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


def _as_nobody(sock: Path) -> dict[str, Any]:
    """whoami and a stop attempt from a forked child running as OS user nobody (a raw Unix
    socket client: the kernel tells the server who the child is)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, ask, report through the pipe, never return
        code = 1
        try:
            os.close(rfd)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.connect(str(sock))
                f = c.makefile("rwb")
                out = {}
                for i, (method, params) in enumerate(
                    [
                        ("whoami", {}),
                        (
                            "stop",
                            {
                                "reason": "x",
                                "signature": {"password": "vic's password", "meaning": "approved"},
                            },
                        ),
                    ]
                ):
                    f.write(json.dumps({"id": i, "method": method, "params": params}).encode())
                    f.write(b"\n")
                    f.flush()
                    out[method] = json.loads(f.readline())
            os.write(wfd, json.dumps(out).encode())
            code = 0
        except BaseException as exc:
            os.write(wfd, json.dumps({"child": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    replies = json.loads(b"".join(chunks))
    assert os.waitstatus_to_exitcode(status) == 0, replies
    return {
        "whoami": replies["whoami"]["result"],
        "stop": "{type}: {message}".format(**replies["stop"]["error"]),
    }


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    return start_run(tmp_path, *extra, speed=300.0)


@pytest.mark.timeout(300)
def test_audited_kp_change_survives_kill9_and_is_in_force_after_resume(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    first = _start(tmp_path)
    try:
        r = connect_run(tmp_path / "run.sock", first)
        wait_for_state(db, first)  # a state committed: the second run resumes from it
        r.reason = "probe swap"
        r.loops["ph"].kp = 6.0  # audited (durable), then applied; the state commit follows
        first.send_signal(signal.SIGKILL)  # before the historian's next commit of the state
        r.close()
    finally:
        first.kill()
        first.communicate(timeout=30)
    (tmp_path / "run.sock").unlink(missing_ok=True)
    with HistoryReader(db) as h:
        [rec] = [a for a in h.audit.records() if a.target == "loops.ph.kp"]
        assert (rec.old_value, rec.new_value, rec.reason) == (5.0, 6.0, "probe swap")
    second = _start(tmp_path, "--duration", "0.02", "--on-restart", "resume")
    r2 = connect_run(tmp_path / "run.sock", second)
    try:
        kp_after_resume = r2.loops["ph"].kp
    finally:
        r2.close()
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, out + err
    assert ", resumed" in out.splitlines()[0]
    assert kp_after_resume == 6.0
    with HistoryReader(db) as h:
        assert h.load_state("controller")["loops"]["ph"]["pid"]["kp"] == 6.0
        assert h.audit.verify().is_intact
