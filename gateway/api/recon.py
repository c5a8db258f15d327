"""Reconciliation routes (对账) for administrators: runs, calendar, differences, bill import.
Thin: parse, call, serialise."""
from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ValidationFailed
from .admin import actor
from .handlers import json_response, parse
from .his import _day, _limit, _list
from .keys import CORE


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: dt.date
    mode: str = Field(default="t1", pattern=r"^(t0|t1)$")
    window_days: int | None = Field(default=None, ge=0, le=7)


class InsuranceRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    begin: dt.date
    end: dt.date | None = None
    centre: str | None = Field(default=None, max_length=40)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=200)


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(pattern=r"^(balanced|cash_refund|written_back|ignored)$")
    note: str = Field(min_length=2, max_length=250)


async def start_run(request: web.Request) -> web.Response:
    """一键对账: fetch every source of the day, match, record differences (idempotent)."""
    body = await parse(request, RunIn)
    out = await request.app[CORE].recon.run(body.date, actor=actor(request), mode=body.mode,
                                           window_days=body.window_days)
    return json_response(out, status=201)


async def list_runs(request: web.Request) -> web.Response:
    """Reconciliation runs, newest first (``date`` filters one day)."""
    return json_response({"items": await request.app[CORE].recon.runs(_day(request), _limit(request))})


async def get_run(request: web.Request) -> web.Response:
    """One run: its fetches, totals per source and counts per class."""
    return json_response(await request.app[CORE].recon.run_out(request.match_info["id"]))


async def calendar(request: web.Request) -> web.Response:
    """对账日历: each day of a month (``month=YYYY-MM``) with its state and open differences per channel."""
    raw = request.query.get("month")
    try:
        month = dt.date.fromisoformat(raw + "-01") if raw else dt.date.today().replace(day=1)
    except ValueError as exc:
        raise ValidationFailed("month must be YYYY-MM") from exc
    return json_response(await request.app[CORE].recon.calendar(month))


async def diffs(request: web.Request) -> web.Response:
    """Differences, filtered by ``date``, ``class`` (comma-separated), ``status`` and ``channel``."""
    try:
        offset = int(request.query.get("offset", "0"))
    except ValueError as exc:
        raise ValidationFailed("offset must be an integer") from exc
    out = await request.app[CORE].recon.diffs(day=_day(request), cls=_list(request, "class"),
                                             status=_list(request, "status"), channel=request.query.get("channel"),
                                             limit=_limit(request), offset=offset)
    return json_response(out)


async def diff(request: web.Request) -> web.Response:
    """One difference with its history and, for a long entry, its single-sided case."""
    return json_response(await request.app[CORE].recon.diff(request.match_info["id"]))


async def mark(request: web.Request) -> web.Response:
    """Close a difference with a mark: 平账/调账, cash refund registered, recorded by hand, ignored (with a note)."""
    body = await parse(request, MarkIn)
    return json_response(await request.app[CORE].recon.mark(request.match_info["id"], action=body.action,
                                                             note=body.note, actor=actor(request)))


async def start_insurance_run(request: web.Request) -> web.Response:
    """医保对账: totals by insutype + clr_type + clearing institution (3201), details (3202) where they differ."""
    body = await parse(request, InsuranceRunIn)
    out = await request.app[CORE].recon.insurance.run(body.begin, body.end, centre_id=body.centre,
                                                     actor=actor(request))
    return json_response(out, status=201)


async def reverse(request: web.Request) -> web.Response:
    """Apply to reverse (冲正) a settlement only the insurance centre has; carried out after approval."""
    body = await parse(request, ReasonIn)
    out = await request.app[CORE].recon.insurance.request_reversal(request.match_info["id"], actor=actor(request),
                                                                  reason=body.reason)
    return json_response(out, status=202)


async def import_bank_statement(request: web.Request) -> web.Response:
    """银行流水导入: the CSV/Excel statement of ``account`` (``filename`` tells the format); its credits are
    stored per day (a day imported again is replaced) for the fund-arrival check of each run."""
    from ..recon.bank import import_statement

    account = request.query.get("account", "").strip()
    if not account:
        raise ValidationFailed("account is required")
    filename = request.query.get("filename") or request.headers.get("X-Filename") or "statement.csv"
    out = await import_statement(request.app[CORE], account[:64], await request.read(), filename, actor(request))
    return json_response({"account": account, "days": [o.as_dict() for o in out]})


async def fetches(request: web.Request) -> web.Response:
    """The fetch log: every fetch or import of a source's bill, with its outcome."""
    return json_response({"items": await request.app[CORE].recon.fetch_log(_day(request), _limit(request))})


async def reports(request: web.Request) -> web.Response:
    """The reports on offer (报表)."""
    return json_response({"items": request.app[CORE].reports.list()})


async def report(request: web.Request) -> web.Response:
    """One report for ``begin``..``end`` (``group`` day|month|quarter|year); ``format`` json, csv, xlsx or html,
    ``lang`` zh or en. Every export is written to the audit log (导出日志)."""
    from ..recon.export import FORMATS

    core = request.app[CORE]
    begin = _day(request, "begin")
    if begin is None:
        raise ValidationFailed("begin (YYYY-MM-DD) is required")
    end = _day(request, "end") or begin
    fmt = request.query.get("format", "json")
    lang = "en" if request.query.get("lang", "zh").startswith("en") else "zh"
    if fmt != "json" and fmt not in FORMATS:
        raise ValidationFailed(f"format must be json or one of {', '.join(FORMATS)}")
    rep = await core.reports.build(request.match_info["key"], begin, end, request.query.get("group", "day"))
    if fmt == "json":
        return json_response(rep.as_dict())
    content_type, render = FORMATS[fmt]
    await core.ledger.audit(actor(request), "report.export", rep.key, {
        "format": fmt, "begin": begin.isoformat(), "end": end.isoformat(), "group": rep.group, "rows": len(rep.rows)})
    name = f"{rep.key}_{begin:%Y%m%d}_{end:%Y%m%d}.{fmt}"
    return web.Response(body=render(rep, lang), headers={"Content-Type": content_type,
                                                         "Content-Disposition": f'attachment; filename="{name}"'})


def add_recon_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/admin/recon/runs", start_run)
    r.add_get("/v1/admin/recon/runs", list_runs)
    r.add_get("/v1/admin/recon/runs/{id}", get_run)
    r.add_get("/v1/admin/recon/calendar", calendar)
    r.add_get("/v1/admin/recon/diffs", diffs)
    r.add_get("/v1/admin/recon/diffs/{id}", diff)
    r.add_post("/v1/admin/recon/diffs/{id}/mark", mark)
    r.add_get("/v1/admin/recon/fetches", fetches)
    r.add_post("/v1/admin/recon/bank-statements", import_bank_statement)
    r.add_post("/v1/admin/recon/insurance/runs", start_insurance_run)
    r.add_post("/v1/admin/recon/diffs/{id}/reverse", reverse)
    r.add_get("/v1/admin/reports", reports)
    r.add_get("/v1/admin/reports/{key}", report)
