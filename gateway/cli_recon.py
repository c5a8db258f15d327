"""``yinyi recon …``: one-click reconciliation of a day from the terminal."""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click

from .cli_his import _run
from .money import fen_to_yuan

STEP_ZH = {"fetch": "获取账单", "match": "勾对", "record": "记录差异"}


@click.group()
def recon() -> None:
    """Reconciliation (对账): runs, differences."""


@recon.command("run")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The business day")
@click.option("--mode", type=click.Choice(["t1", "t0"]), default="t1",
              help="t1: HIS × platform × channel (default); t0: HIS × platform")
@click.option("--window", "window_days", type=int, default=None, help="Adjacent days searched (T±k)")
@click.option("--json", "as_json", is_flag=True)
def run(day: dt.datetime, mode: str, window_days: int | None, as_json: bool) -> None:
    """Fetch every source of the day, match them and record the differences (idempotent)."""
    bars: dict[str, Any] = {}
    show = not as_json and sys.stderr.isatty()

    def progress(step: str, done: int, total: int) -> None:
        if not show:
            return
        bar = bars.get(step)
        if bar is None:
            bar = bars[step] = click.progressbar(length=max(total, 1), label=f"{STEP_ZH[step]:<6}", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    out = _run(lambda core: core.recon.run(day.date(), actor="cli", mode=mode, window_days=window_days,
                                           progress=progress))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    from .recon.matching import CLASSES

    s = out["summary"]
    click.echo(f"{out['day']} {out['mode']} run {out['id']}: {out['status']}"
               + ("" if s.get("complete") else "  (数据不全: some bills could not be fetched)"))
    for f in s["fetches"]:
        if f["status"] != "OK":
            click.echo(f"  ! {f['source']} {f['source_id']} {f['bill_type']}: {f['error']}")
    for src, t in s["totals"].items():
        click.echo(f"  {src:<9} {t['count']:>8} lines, paid {fen_to_yuan(t['paid']):>14}, "
                   f"refunded {fen_to_yuan(t['refunded']):>12}")
    for cls, n in s["classes"].items():
        click.echo(f"  {CLASSES[cls][0]:<8} {cls:<16} {n:>8}")
    click.echo(f"  new {s['new_differences']}, updated {s['updated_differences']}, "
               f"cleared {s['cleared_differences']}, cases opened {s['cases_opened']}")


@recon.command("diffs")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--status", default="OPEN")
@click.option("--json", "as_json", is_flag=True)
def diffs(day: dt.datetime | None, status: str, as_json: bool) -> None:
    """List differences (open ones by default)."""
    out = _run(lambda core: core.recon.diffs(day=day.date() if day else None, status=status.split(",")))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for d in out["items"]:
        amounts = "/".join("-" if d[k] is None else fen_to_yuan(d[k])
                           for k in ("his_amount", "platform_amount", "channel_amount"))
        click.echo(f"{d['id']} {d['day']} {d['class_zh']:<6} {d['kind']:<7} {d['txn_id']:<26} "
                   f"{d['channel'] or '-':<10} HIS/平台/渠道 {amounts} {d['status_zh']}")
    click.echo(f"{out['total']} difference(s)")


@recon.command("import-bank")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--account", required=True, help="The hospital's bank account the statement is of")
def import_bank(file: str, account: str) -> None:
    """Import a bank statement (CSV or Excel) for the fund-arrival check (资金到账)."""
    from pathlib import Path

    from .recon.bank import import_statement

    path = Path(file)
    out = _run(lambda core: import_statement(core, account, path.read_bytes(), path.name, "cli"))
    for o in out:
        click.echo(f"  {account} {o.line_count:>4} credits, {fen_to_yuan(o.total_paid):>14}")


@recon.command("insurance")
@click.option("--begin", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--end", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Default: the begin day")
@click.option("--centre", default=None)
@click.option("--json", "as_json", is_flag=True)
def insurance(begin: dt.datetime, end: dt.datetime | None, centre: str | None, as_json: bool) -> None:
    """医保对账: totals (3201) per insutype, clearing type and institution; details (3202) where they differ."""
    out = _run(lambda core: core.recon.insurance.run(begin.date(), end.date() if end else None, centre_id=centre,
                                                    actor="cli"))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    s = out["summary"]
    click.echo(f"{s['centre']} {s['begin']}~{s['end']}: {'平' if s['balanced'] else '不平'}, "
               f"{s['differences']} settlement(s) differ")
    for g in s["groups"]:
        click.echo(f"  {g['insutype']:<6} {g['clr_type']:<6} {g['setl_optins']:<8} {g['count']:>6} "
                   f"{fen_to_yuan(g['medfee_sumamt']):>14} {'平' if g['balanced'] else '不平 ' + (g['description'] or '')}")


@click.command("report")
@click.argument("key")
@click.option("--begin", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--end", default=None, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--group", type=click.Choice(["day", "month", "quarter", "year"]), default="day")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv", "xlsx", "html"]), default="text")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write to this file")
def report(key: str, begin: dt.datetime, end: dt.datetime | None, group: str, fmt: str, lang: str,
           out_path: str | None) -> None:
    """Build a report (KEY: long_short, refunds, cashier_income, cashier_detail, channel_income,
    platform_vs_his, platform, his, insurance) and print or export it."""
    from .recon.export import FORMATS

    async def work(core: Any) -> Any:
        rep = await core.reports.build(key, begin.date(), (end or begin).date(), group)
        if fmt not in ("text", "json"):
            await core.ledger.audit("cli", "report.export", rep.key, {"format": fmt, "rows": len(rep.rows)})
        return rep

    rep = _run(work)
    if fmt in FORMATS:
        data = FORMATS[fmt][1](rep, lang)
    elif fmt == "json":
        data = json.dumps(rep.as_dict(), ensure_ascii=False, indent=2).encode()
    else:
        cols = rep.columns
        lines = [rep.title_zh if lang == "zh" else rep.title_en,
                 "\t".join(c.zh if lang == "zh" else c.en for c in cols)]
        for row in [*rep.rows, rep.totals]:
            lines.append("\t".join(fen_to_yuan(int(row.get(c.key) or 0)) if c.kind == "fen" and c.key in row
                                   else str(row.get(c.key, "")) for c in cols))
        data = ("\n".join(lines) + "\n").encode()
    if out_path:
        with open(out_path, "wb") as f:
            f.write(data)
        click.echo(f"wrote {out_path} ({len(rep.rows)} rows)")
    else:
        sys.stdout.buffer.write(data)
