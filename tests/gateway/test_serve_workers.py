"""``yinyi serve --workers N``: several gateway processes on one port.

On PostgreSQL + Redis the workers share the port and the ledger, a payment made
through any of them is seen by all, SIGTERM stops the set, and a worker that dies
takes the set down (so that the service manager restarts it whole). On the embedded
SQLite default, several workers are refused with a message saying what they need.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from gateway.config import Settings
from gateway.testing import SignedClient
from tests.conftest import free_port, wait_for
from tests.gateway.procs import GatewayProcess
from tests.gateway.test_multiprocess import _prepare
from tests.gateway.test_payments import pay_body


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


async def test_workers_share_the_port_and_the_ledger(settings: Settings, wechat_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if settings.is_sqlite:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YINYI_")}
        env.update(YINYI_DATA_DIR=str(tmp_path), YINYI_PORT=str(free_port()))
        res = subprocess.run([sys.executable, "-m", "gateway", "serve", "--workers", "2"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode != 0
        assert "PostgreSQL" in res.stderr and "Redis" in res.stderr, res.stderr
        return

    sandbox = await _prepare(settings, wechat_sim)
    gw = GatewayProcess(settings, free_port(), tmp_path / "gw.log", extra_env={"YINYI_WORKERS": "2"})
    await gw.start()
    assert gw.proc is not None
    try:
        workers = await wait_for(lambda: _ready(gw.proc.pid), timeout=30)  # type: ignore[union-attr]
        assert len(workers) == 2
        caller = sandbox["caller"]
        async with SignedClient(gw.base_url, caller["app_id"], caller["secret"]) as client:
            bodies = [pay_body() for _ in range(12)]
            answers = await asyncio.gather(*(client.post("/v1/payments", b) for b in bodies))
            assert all(status == 200 and p["status"] == "SUCCEEDED" for status, p in answers), answers
            for _status, p in answers:  # every payment is readable whichever worker answers
                status, again = await client.get(f"/v1/payments/{p['payment_id']}")
                assert status == 200 and again["status"] == "SUCCEEDED"
        # A worker that dies takes the set down: the supervisor exits non-zero.
        os.kill(workers[0], signal.SIGKILL)
        code = await asyncio.get_running_loop().run_in_executor(None, gw.proc.wait, 30)
        assert code != 0
        assert all(not _alive(w) for w in workers)
    finally:
        gw.stop()


async def test_sigterm_stops_every_worker(settings: Settings, wechat_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if settings.is_sqlite:
        return  # one process on the embedded default: nothing to supervise (refusal tested above)
    await _prepare(settings, wechat_sim)
    gw = GatewayProcess(settings, free_port(), tmp_path / "gw.log", extra_env={"YINYI_WORKERS": "2"})
    await gw.start()
    assert gw.proc is not None
    workers = await wait_for(lambda: _ready(gw.proc.pid), timeout=30)  # type: ignore[union-attr]
    gw.proc.send_signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, gw.proc.wait, 30)
    gw.stop()
    assert code == 0
    assert all(not _alive(w) for w in workers)


async def _ready(pid: int) -> list[int] | None:
    kids = _children(pid)
    return kids if len(kids) == 2 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is reaped by its parent (gone with it); count it as stopped.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
