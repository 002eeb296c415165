"""OPC UA LADS server figures: value change → subscribed client latency, server memory, and scan
lateness with and without the server and one client subscribed to every value node.

Runs the E. coli example at a 0.1 s scan period in real time for ``--seconds``, twice in fresh
subprocesses: without ``[opcua]`` and with it plus one asyncua client (Basic256Sha256
SignAndEncrypt, username/password) subscribed to every CurrentValue and SensorValue node at a
50 ms publishing interval. The latency is the client's receipt time minus the value's
SourceTimestamp (when the server read the tag store; same host clock); a tag change waits up to
``publish_period_s`` more before the server reads it (the config's 0.2 s by default).

    python tests/benchmarks/opcua_latency.py --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import tomllib
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "benchmark password"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def subscribe_all(url: str, tmp: Path, seconds: float, lat_ms: list[float]) -> int:
    from asyncua import Client, ua
    from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

    from edgectl.lab.lads_model import LADS_URI

    client = Client(url, timeout=60.0)
    client.application_uri = "urn:edgectl:bench:client"
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(tmp / "client.der"),
        str(tmp / "client.pem"),
        server_certificate=str(tmp / "run.pki" / "server_cert.der"),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    client.set_user("bench")
    client.set_password(PASSWORD)
    async with client:
        lads = await client.get_namespace_index(LADS_URI)
        ns = await client.get_namespace_index("urn:edgectl:ecoli-2L")
        di = await client.get_namespace_index("http://opcfoundation.org/UA/DI/")
        fset = await client.nodes.objects.get_child(
            [
                f"{di}:DeviceSet",
                f"{ns}:ecoli-2L",
                f"{lads}:FunctionalUnitSet",
                f"{ns}:Vessel",
                f"{lads}:FunctionSet",
            ]
        )
        nodes = []
        for fn in await fset.get_children():
            for name in ("CurrentValue", "SensorValue"):
                with contextlib.suppress(ua.UaError):
                    nodes.append(await fn.get_child(f"{lads}:{name}"))

        class Handler:
            def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                src = data.monitored_item.Value.SourceTimestamp
                if src is not None:
                    now = dt.datetime.now(dt.UTC)
                    lat_ms.append((now - src.replace(tzinfo=dt.UTC)).total_seconds() * 1000)

        sub = await client.create_subscription(50, Handler())
        await sub.subscribe_data_change(nodes)
        await asyncio.sleep(seconds)
        await sub.delete()
        return len(nodes)


def child(opcua: bool, seconds: float, cache_dir: str) -> dict[str, Any]:
    from edgectl.config import to_toml_text
    from edgectl.lab.certs import make_certificate
    from edgectl.operator import UserStore
    from edgectl.runtime.build import open_run

    with TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tomllib.loads((ROOT / "examples" / "ecoli-fedbatch-2L.toml").read_text())
        data["reactor"]["scan_period_s"] = 0.1
        if opcua:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            data["opcua"] = {"enabled": True, "port": port, "cache_dir": cache_dir}
            der, key = make_certificate("urn:edgectl:bench:client", "bench", ["127.0.0.1"])
            (tmp / "client.der").write_bytes(der)
            (tmp / "client.pem").write_bytes(key)
            (tmp / "run.pki" / "trusted").mkdir(parents=True)
            (tmp / "run.pki" / "trusted" / "client.der").write_bytes(der)
            UserStore(tmp / "run.users").add("bench", "viewer", PASSWORD)
        cfg = tmp / "reactor.toml"
        cfg.write_text(to_toml_text(data))
        run = open_run(cfg, speed=1.0, db=tmp / "run.db", socket_path=tmp / "r.sock")
        rss_ready = rss_mb()
        worker = threading.Thread(target=run.run, args=(seconds,))
        worker.start()
        lat_ms: list[float] = []
        n_nodes = 0
        if opcua:
            n_nodes = asyncio.run(subscribe_all(run.faces[0].endpoint, tmp, seconds - 5, lat_ms))
        worker.join()
        timing = run.timing()
        rss_end = rss_mb()
        run.close()
    return {
        "opcua": opcua,
        "rss_ready_mb": rss_ready,
        "rss_end_mb": rss_end,
        "lateness_ms": timing["lateness_ms"],
        "scans": timing["scans"],
        "overruns": timing["overruns"],
        "nodes": n_nodes,
        "notifications": len(lat_ms),
        "latency_ms": {
            "p50": pct(lat_ms, 0.5),
            "p99": pct(lat_ms, 0.99),
            "max": max(lat_ms, default=float("nan")),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--child", choices=("plain", "opcua"))
    ap.add_argument("--cache-dir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "opcua", args.seconds, args.cache_dir)))
        return
    # the OPC UA run twice: its first start builds the standard address-space cache
    # (edgectl.lab.opcua_cache), the second loads it, as every later start of a deployment does
    with TemporaryDirectory() as cache:
        runs = [
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    child_mode,
                    "--seconds",
                    str(args.seconds),
                    "--cache-dir",
                    cache,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for child_mode in ("plain", "opcua", "opcua")
        ]
    for mode, out in zip(("plain", "opcua (first start)", "opcua (cached)"), runs, strict=True):
        r = json.loads(out.strip().splitlines()[-1])
        late = r["lateness_ms"]
        print(
            f"{mode:20s} RSS ready {r['rss_ready_mb']:.1f} MB, end {r['rss_end_mb']:.1f} MB; "
            f"scans {r['scans']}, overruns {r['overruns']}, lateness {late}"
        )
        if mode != "plain":
            lat = r["latency_ms"]
            print(
                f"       {r['nodes']} nodes subscribed, {r['notifications']} notifications; "
                f"SourceTimestamp → client p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
                f"max {lat['max']:.1f} ms"
            )


if __name__ == "__main__":
    main()
