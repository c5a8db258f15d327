"""Payment round trip benchmark: create + pay by payment code, through the gateway to a
channel's simulator, against a baseline measured in the same run (a bare aiohttp
handler making the same upstream call through the same adapter, with no ledger).

Each server runs in its own process; the load generator runs here. Prints, per
database: throughput of both (closed loop), the ratio, and at a fixed offered rate
the gateway's p50/p99 latency added over the baseline's.

Targets: ratio >= 0.40; p99 added latency < 15 ms at 200 payments/s.

    python bench/payment_roundtrip.py [--channels wechatpay,alipay,...] [--db sqlite,postgres]
                                      [--seconds 10] [--rate 200]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.api.signing import signed_headers  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.core import Core  # noqa: E402

PG_URL = os.environ.get("YINYI_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DRIVERS = {
    "wechatpay": "channels.wechatpay.conformance:WeChatPayDriver",
    "unionpay": "channels.unionpay.conformance:UnionPayDriver",
    "alipay": "channels.alipay.conformance:AlipayDriver",
    "ecny": "plugins.banks.refbank.conformance:RefBankDriver",
}


def success_code_maker(channel: str):  # type: ignore[no-untyped-def]
    """The channel's conformance driver knows which payment codes its simulator pays at once."""
    import importlib

    mod, _, name = DRIVERS[channel].partition(":")
    driver = getattr(importlib.import_module(mod), name)(None, None)
    return lambda: driver.auth_code("success")


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Target:
    """How to send one payment to a server."""

    def __init__(self, base: str, path: str, app: tuple[str, str] | None, code) -> None:  # type: ignore[no-untyped-def]
        self.url = base + path
        self.path = path
        self.app = app
        self.code = code

    async def pay(self, session: aiohttp.ClientSession) -> float:
        body = orjson.dumps({"out_trade_no": "B" + secrets.token_hex(10), "amount": 1, "subject": "bench",
                             "business_type": "outpatient", "method": "code", "auth_code": self.code()})
        headers = (signed_headers(self.app[0], self.app[1], "POST", self.path, body) if self.app
                   else {"Content-Type": "application/json"})
        t0 = time.perf_counter()
        async with session.post(self.url, data=body, headers=headers) as r:
            data = await r.read()
            if r.status != 200 or b"SUCCEEDED" not in data.upper():
                raise RuntimeError(f"payment failed: {r.status} {data[:300]!r}")
        return time.perf_counter() - t0


async def closed_loop(target: Target, seconds: float, concurrency: int) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await target.pay(s)
                done += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - t0)


async def open_loop(target: Target, seconds: float, rate: float) -> list[float]:
    """Offer ``rate`` payments/s regardless of answers; return every latency."""
    latencies: list[float] = []
    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as s:
        t0 = time.perf_counter()
        n = int(seconds * rate)
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(target.pay(s)))
        for t in tasks:
            latencies.append(await t)
    return latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


async def prepare_gateway(data_dir: Path, db_url: str | None, redis_url: str | None, sim: dict,
                          channel: str) -> tuple[str, str]:
    overrides: dict = {"data_dir": data_dir}
    if db_url:
        overrides["database_url"] = db_url
    if redis_url:
        overrides["redis_url"] = redis_url
    settings = Settings(**overrides)
    core = Core(settings)
    if db_url and db_url.startswith("postgresql"):
        import asyncpg

        conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg", "postgresql"))
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await conn.close()
    await core.start(background=False)
    try:
        await core.directory.upsert_campus("main", "本院区")
        await core.directory.create_merchant(channel=channel, name="bench", config=sim["merchants"][0],
                                             merchant_id="mch_bench")
        return await core.directory.create_app("bench caller")
    finally:
        await core.stop()


def start_baseline(channel: str, cfg_path: Path, workers: int) -> tuple[int, list[subprocess.Popen]]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "bench" / "_baseline_server.py"), channel, str(port), str(cfg_path)]
    if workers > 1:
        cmd.append("--reuse-port")
    return port, [subprocess.Popen(cmd, cwd=ROOT) for _ in range(workers)]


def stop(procs: list[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


async def run_backend(name: str, db_url: str | None, redis_url: str | None, args: argparse.Namespace,
                      sim: dict, cfg_path: Path, procs: list[subprocess.Popen], channel: str, workers: int) -> dict:
    """Baseline and gateway, each run with ``workers`` processes, measured one after the other."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"yinyi-bench-{name}-"))
    app = await prepare_gateway(data_dir, db_url, redis_url, sim, channel)
    base_port, base_procs = start_baseline(channel, cfg_path, workers)
    procs.extend(base_procs)
    await wait_http(f"http://127.0.0.1:{base_port}/pay")
    baseline = Target(f"http://127.0.0.1:{base_port}", "/pay", None, success_code_maker(channel))
    port = free_port()
    env = dict(os.environ, YINYI_DATA_DIR=str(data_dir), YINYI_PORT=str(port), YINYI_HOST="127.0.0.1",
               YINYI_LOG_BODIES="true", YINYI_WORKERS=str(workers))
    if db_url:
        env["YINYI_DATABASE_URL"] = db_url
    if redis_url:
        env["YINYI_REDIS_URL"] = redis_url
    cmd = [sys.executable, "-m", "gateway", "serve"]
    gw_proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=(data_dir / "gateway.log").open("wb"))
    procs.append(gw_proc)
    await wait_http(f"http://127.0.0.1:{port}/v1/health")
    gateway = Target(f"http://127.0.0.1:{port}", "/v1/payments", app, baseline.code)
    try:
        for t in (baseline, gateway):  # warm up connections, caches and the JIT-less interpreter alike
            await closed_loop(t, 1.0, 8)
        base_tp = await closed_loop(baseline, args.seconds, args.concurrency)
        gw_tp = await closed_loop(gateway, args.seconds, args.concurrency)
        base_lat = await open_loop(baseline, args.seconds, args.rate)
        gw_lat = await open_loop(gateway, args.seconds, args.rate)
    finally:
        stop([gw_proc])
        stop(base_procs)
    return {
        "channel": channel, "backend": name, "workers": workers, "baseline_tps": base_tp, "gateway_tps": gw_tp,
        "ratio": gw_tp / base_tp, "rate": args.rate,
        "baseline_p50_ms": pct(base_lat, 50), "baseline_p99_ms": pct(base_lat, 99),
        "gateway_p50_ms": pct(gw_lat, 50), "gateway_p99_ms": pct(gw_lat, 99),
        "added_p50_ms": pct(gw_lat, 50) - pct(base_lat, 50), "added_p99_ms": pct(gw_lat, 99) - pct(base_lat, 99),
        "mean_added_ms": (statistics.mean(gw_lat) - statistics.mean(base_lat)) * 1000,
    }


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default=",".join(DRIVERS))
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--redis", default=os.environ.get("YINYI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes for the gateway and, alike, the baseline on PostgreSQL+Redis "
                         "(default: one per CPU, as deployed); SQLite runs one of each")
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    results = []
    try:
        for channel in args.channels.split(","):
            sim_proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_sim_server.py"), channel,
                                         str(free_port())], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            procs.append(sim_proc)
            sim = json.loads(sim_proc.stdout.readline())  # type: ignore[union-attr]
            cfg_path = Path(tempfile.mkstemp(suffix=".json")[1])
            cfg_path.write_text(json.dumps(sim["merchants"][0]))
            for name in args.db.split(","):
                if name == "sqlite":  # the embedded default is one process by design
                    results.append(await run_backend("sqlite", None, None, args, sim, cfg_path, procs, channel, 1))
                elif name == "postgres":
                    results.append(await run_backend("postgres+redis", PG_URL, args.redis, args, sim, cfg_path,
                                                     procs, channel, args.workers))
            stop([sim_proc])
    finally:
        stop(procs)
    ok = True
    print("\npayment round trip (create + pay by payment code), gateway vs bare-handler baseline, same run")
    print(f"{'channel':<11}{'backend':<16}{'procs':>6}{'base tps':>10}{'gw tps':>9}{'ratio':>7}  @{args.rate:.0f}/s: "
          f"{'base p50':>9}{'base p99':>9}{'gw p50':>8}{'gw p99':>8}{'+p50':>7}{'+p99':>7}  verdict")
    for r in results:
        good = r["ratio"] >= 0.40 and r["added_p99_ms"] < 15.0
        ok &= good
        print(f"{r['channel']:<11}{r['backend']:<16}{r['workers']:>6}{r['baseline_tps']:>10.1f}{r['gateway_tps']:>9.1f}{r['ratio']:>7.2f}  "
              f"{'':>{len(str(int(args.rate))) + 3}}{r['baseline_p50_ms']:>9.2f}{r['baseline_p99_ms']:>9.2f}"
              f"{r['gateway_p50_ms']:>8.2f}{r['gateway_p99_ms']:>8.2f}{r['added_p50_ms']:>7.2f}"
              f"{r['added_p99_ms']:>7.2f}  {'meets targets' if good else 'MISSES targets'}")
    print("targets: ratio >= 0.40, added p99 < 15 ms (ms columns are milliseconds)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    from gateway.cli import loop_factory

    # The load generator runs on the same loop as the servers (uvloop where installed).
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        raise SystemExit(runner.run(main()))
