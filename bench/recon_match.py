"""Reconciliation matching benchmark: the three-way match of one synthetic business day,
against a baseline measured in the same run (a bare DuckDB full outer hash join of the
same three tables on (txn_id, kind), no classification, counting the joined rows).

A child process generates the day (``gateway.recon.synth.generate_day``: N transactions
on D, ~8% refunds, four channels, full neighbouring days, a few hundred injected
differences of every class) and writes the three sources and the answer key as Parquet;
this process loads them, as the engine loads bills, and matches. Generation therefore
neither costs time nor memory in the figures for matching. The baseline runs in another
child process, on the same files loaded into DuckDB tables. Times are the best of
``--repeat`` runs (all runs are printed).

Targets: match < 10 s; peak RSS of the matching process < 2 GB; match <= 2x baseline;
exact (every injected difference found with its class, nothing else reported). Exits 1
if the match is not exact. The baseline needs DuckDB (``pip install duckdb``; the
project itself does not depend on it); without it the ratio is skipped.

    python bench/recon_match.py [--rows 1000000] [--seed 1] [--adjacent ROWS] [--per-class N]
                                [--repeat 3] [--json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402

from gateway.recon.matching import CLASSES, match_day  # noqa: E402

SOURCES = ("platform", "his", "channel")
MB = 1024 * 1024


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss()


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    shown = sum(2 if ord(ch) >= 0x2E80 else 1 for ch in text)
    return text + " " * max(0, width - shown)


def generate(out: Path, args: argparse.Namespace) -> dict:
    """Child process: build the day, write it as Parquet, report what it built."""
    from gateway.recon.synth import generate_day

    t0 = time.perf_counter()
    day = generate_day(args.rows, args.seed, per_class=args.per_class, adjacent_rows=args.adjacent)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name in SOURCES:
        getattr(day, name).write_parquet(out / f"{name}.parquet", compression="uncompressed", statistics=False)
    pl.DataFrame([(k, kind, c) for (k, kind), c in day.truth.items()], schema=["txn_key", "kind", "cls"],
                 orient="row").write_parquet(out / "truth.parquet")
    write_s = time.perf_counter() - t0
    return {"day": day.day.isoformat(), "window_days": day.window_days, "generate_s": gen_s, "write_s": write_s,
            "lines": {name: getattr(day, name).height for name in SOURCES}, "expected": dict(day.expected),
            "expected_rows": day.expected_rows, "variants": dict(day.injected), "peak_rss": peak_rss()}


BASELINE_JOIN = """FROM platform p
FULL OUTER JOIN his h ON p.txn_id = h.txn_id AND p.kind = h.kind
FULL OUTER JOIN channel c ON coalesce(p.txn_id, h.txn_id) = c.txn_id AND coalesce(p.kind, h.kind) = c.kind"""


def baseline(src: Path, repeat: int) -> dict:
    """Child process: the bare DuckDB full outer hash join of the three tables.

    Timed twice: counting the joined rows (the join alone, nothing materialised; the
    reference for the ratio) and materialising every joined column into a temp table.
    """
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    for name in SOURCES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{src / (name + '.parquet')}')")
    load_s = time.perf_counter() - t0
    count_times, ctas_times, rows = [], [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = con.execute(f"SELECT count(*) {BASELINE_JOIN}").fetchone()[0]  # type: ignore[index]
        count_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE joined AS SELECT * {BASELINE_JOIN}")
        ctas_times.append(time.perf_counter() - t0)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]  # type: ignore[index]
    return {"load_s": load_s, "times": count_times, "ctas_times": ctas_times, "rows": rows, "threads": threads,
            "duckdb": duckdb.__version__, "peak_rss": peak_rss()}


def child(mode: str, workdir: Path, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, f"--{mode}", str(workdir), "--rows", str(args.rows), "--seed", str(args.seed),
           "--repeat", str(args.repeat)]
    if args.per_class is not None:
        cmd += ["--per-class", str(args.per_class)]
    if args.adjacent is not None:
        cmd += ["--adjacent", str(args.adjacent)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="transactions on the matched day")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--adjacent", type=int, default=None,
                    help="transactions on each neighbouring day (default: --rows)")
    ap.add_argument("--per-class", type=int, default=None, help="injected transactions per class (default: 300)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        print(json.dumps(generate(args.generate, args)))
        return 0
    if args.baseline:
        print(json.dumps(baseline(args.baseline, args.repeat)))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="yinyi-bench-recon-"))
    try:
        gen = child("generate", workdir, args)
        t0 = time.perf_counter()
        frames = {name: pl.read_parquet(workdir / f"{name}.parquet") for name in SOURCES}
        truth_df = pl.read_parquet(workdir / "truth.parquet")
        load_s = time.perf_counter() - t0
        truth = {(k, kind): c for k, kind, c in truth_df.iter_rows()}
        import datetime as dt

        day = dt.date.fromisoformat(gen["day"])
        rss_before = current_rss()
        times = []
        result = None
        for _ in range(args.repeat):
            result = None  # the previous result is not kept alive through the next run
            t0 = time.perf_counter()
            result = match_day(frames["platform"], frames["his"], frames["channel"], day, gen["window_days"])
            times.append(time.perf_counter() - t0)
        assert result is not None
        match_peak = peak_rss()
        base = child("baseline", workdir, args) if importlib.util.find_spec("duckdb") else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    # -- exactness: every injected difference found with its class, nothing else reported ---
    rows = result.rows
    found = {(k, kind): c for k, kind, c in rows.filter(pl.col("cls") != "matched")
             .select("txn_key", "kind", "cls").iter_rows()}
    missed = {k: c for k, c in truth.items() if found.get(k) != c}
    invented = {k: c for k, c in found.items() if truth.get(k) != c}
    unique = rows.select(pl.struct("txn_key", "kind").is_unique().all()).item()
    exact = not missed and not invented and rows.height == gen["expected_rows"] and unique
    found_by_class = Counter(found.values())
    found_by_class["matched"] = result.summary["matched"]

    best = min(times)
    ratio = best / min(base["times"]) if base else None
    peak = match_peak
    grew = match_peak - rss_before
    targets = [
        ("match time < 10 s", best < 10.0, f"{best:.2f} s"),
        ("peak RSS < 2 GB", peak < 2 * 1024 * MB, f"{peak / MB:.0f} MB"),
        ("match <= 2x baseline", None if ratio is None else ratio <= 2.0,
         "no baseline" if ratio is None else f"{ratio:.2f}x"),
        ("exact", exact, f"{len(missed)} missed, {len(invented)} invented"),
    ]

    lines = gen["lines"]
    print(f"\nreconciliation matching, three-way, day {gen['day']} (window ±{gen['window_days']} day), "
          f"{args.rows:,} transactions on the day")
    print(f"input lines (all days): platform {lines['platform']:,}, his {lines['his']:,}, "
          f"channel {lines['channel']:,}; result rows {rows.height:,} (expected {gen['expected_rows']:,})")
    print(f"generation {gen['generate_s']:.2f} s (child process, peak RSS {gen['peak_rss'] / MB:.0f} MB), "
          f"write {gen['write_s']:.2f} s, load {load_s:.2f} s")
    print(f"match      best {best:.2f} s, median {statistics.median(times):.2f} s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    if base:
        print(f"baseline   best {min(base['times']):.2f} s, median {statistics.median(base['times']):.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in base['times'])}; DuckDB {base['duckdb']}, "
              f"{base['threads']} threads, {base['rows']:,} joined rows counted, load {base['load_s']:.2f} s)")
        print(f"           materialised into a table: best {min(base['ctas_times']):.2f} s  "
              f"(runs: {', '.join(f'{t:.2f}' for t in base['ctas_times'])})")
        print(f"ratio      match / baseline = {ratio:.2f} (against the materialised join: "
              f"{best / min(base['ctas_times']):.2f})")
    else:
        print("baseline   skipped: DuckDB is not installed (pip install duckdb)")
    print(f"memory     peak RSS {peak / MB:.0f} MB; before matching {rss_before / MB:.0f} MB (inputs loaded), "
          f"increase during matching {grew / MB:.0f} MB")
    print(f"\n{'class':<17}{'label':<12}{'expected':>10}{'found':>10}  check"
          "   (expected = injected; matched: the rest)")
    for cls, (zh, _en) in CLASSES.items():
        want = gen["expected"].get(cls, 0)
        got = found_by_class.get(cls, 0)
        print(f"{cls:<17}{pad(zh, 12)}{want:>10,}{got:>10,}  {'ok' if want == got else 'DIFFERS'}")
    if missed or invented:
        for label, items in (("missed", missed), ("invented", invented)):
            for (k, kind), c in list(items.items())[:10]:
                print(f"  {label}: {k} {kind} expected {truth.get((k, kind))} found {found.get((k, kind))}")
    print("\ntargets:")
    for name, ok, value in targets:
        print(f"  {name:<22}{value:>26}  {'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}")
    if args.json:
        print(json.dumps({"generation": gen, "baseline": base, "match_times": times, "load_s": load_s,
                          "peak_rss": peak, "rss_before_match": rss_before, "ratio": ratio, "exact": exact,
                          "summary": result.summary, "missed": len(missed), "invented": len(invented)}, indent=2))
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
