"""Business-system routes: pending charges for callers; systems, write-backs, single-sided
cases, approvals and notifiers for administrators. Thin: parse, call, serialise."""
from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ValidationFailed
from ..his import PatientQuery
from ..services.his_systems import SystemIn, pending_charges
from ..services.notices import NotifierIn
from ..services.writeback import writeback_out
from .admin import actor, reveal
from .handlers import json_response, parse
from .keys import CONSOLE_USER, CORE, REQUEST_APP


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=200)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=2, max_length=250)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=250)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=500)
    decision: str = Field(pattern=r"^(approve|reject)$")
    comment: str | None = Field(default=None, max_length=250)


def roles(request: web.Request) -> list[str]:
    """The operator's roles: a console user's approval roles (from the user's console roles), or what the
    (signed, admin-scoped) calling app asserts in X-Operator-Roles."""
    ident = request.get(CONSOLE_USER)
    if ident is not None:
        return list(ident.approval_roles)
    return [r.strip() for r in request.headers.get("X-Operator-Roles", "").split(",") if r.strip()]


def _day(request: web.Request, key: str = "date") -> dt.date | None:
    raw = request.query.get(key)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{key} must be YYYY-MM-DD") from exc


def _limit(request: web.Request) -> int:
    try:
        return int(request.query.get("limit", "200"))
    except ValueError as exc:
        raise ValidationFailed("limit must be an integer") from exc


def _list(request: web.Request, key: str) -> list[str] | None:
    raw = request.query.get(key)
    return [v for v in raw.split(",") if v] if raw else None


# --- callers ---------------------------------------------------------------------------------------
async def get_pending_charges(request: web.Request) -> web.Response:
    q = request.query
    try:
        query = PatientQuery(card_no=q.get("card_no") or None, id_no=q.get("id_no") or None,
                             visit_no=q.get("visit_no") or None, patient_id=q.get("patient_id") or None)
    except ValidationError as exc:
        raise ValidationFailed("give card_no, id_no, visit_no or patient_id") from exc
    return json_response(await pending_charges(request.app[CORE], system_id=q.get("system"),
                                               business_type=q.get("business_type"), query=query))


async def payment_his(request: web.Request) -> web.Response:
    core = request.app[CORE]
    p = await core.payments.get(request[REQUEST_APP].id, request.match_info["payment_id"])
    wb = await core.writebacks.get_for_payment(p.id)
    return json_response({"payment_id": p.id, "his_system": p.his_system,
                          "writeback": writeback_out(wb, core.vault) if wb else None})


# --- business systems ------------------------------------------------------------------------------
async def systems(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].his.list()})


async def put_system(request: web.Request) -> web.Response:
    body = await parse(request, SystemIn)
    return json_response(await request.app[CORE].his.put(actor(request), request.match_info["id"], body))


async def system_bill(request: web.Request) -> web.Response:
    """A business system's daily bill, fetched live through its adapter."""
    core = request.app[CORE]
    day = _day(request)
    bill_type = request.query.get("bill_type")
    if day is None or not bill_type:
        raise ValidationFailed("date (YYYY-MM-DD) and bill_type are required")
    adapter = await core.his.adapter(request.match_info["id"])
    bill = await adapter.daily_bill(day, bill_type)
    return json_response({"system": request.match_info["id"], **_bill_summary(bill),
                          "lines": [line.model_dump(mode="json", exclude={"raw"}) for line in bill.lines]})


def _bill_summary(bill: Any) -> dict[str, Any]:
    pay = sum(line.amount for line in bill.lines if line.kind == "payment")
    ref = sum(line.amount for line in bill.lines if line.kind == "refund")
    return {"day": bill.day.isoformat(), "bill_type": bill.bill_type, "count": len(bill.lines),
            "paid": pay, "refunded": ref, "net": pay - ref}


async def import_bill(request: web.Request) -> web.Response:
    """账单导入: a CSV or Excel file in the documented format, checked, summarised and stored for
    reconciliation (importing the same day and bill type again replaces it)."""
    from his_adapters.fileimport import parse_bill_file

    day = _day(request)
    if day is None:
        raise ValidationFailed("date (YYYY-MM-DD) is required")
    filename = request.query.get("filename") or request.headers.get("X-Filename") or "bill.csv"
    data = await request.read()
    try:
        parsed = parse_bill_file(data, filename=filename, day=day,
                                 default_bill_type=request.query.get("bill_type"))
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        raise ValidationFailed(f"the bill file is not valid: {exc}", errors=errors) from exc
    bills = parsed if isinstance(parsed, list) else [parsed]
    core = request.app[CORE]
    from ..recon.sources import import_his_bills

    await import_his_bills(core, request.match_info["id"], day, bills, actor(request))
    await request.app[CORE].ledger.audit(actor(request), "his_bill.import", request.match_info["id"],
                                         {"day": day.isoformat(), "filename": filename,
                                          "bills": [_bill_summary(b) for b in bills]})
    return json_response({"system": request.match_info["id"], "bills": [_bill_summary(b) for b in bills]})


# --- write-backs -----------------------------------------------------------------------------------
async def writebacks(request: web.Request) -> web.Response:
    """回写HIS异常 by default (failed or rejected); ``status=`` lists others. Each row names its
    single-sided case (``case_id``), if any."""
    q = request.query
    unmasked = await reveal(request, "his_writebacks")
    items = await request.app[CORE].writebacks.search(
        day=_day(request), patient_id=q.get("patient_id"), patient_name=q.get("patient_name"),
        visit_no=q.get("visit_no"), his_serial=q.get("his_serial"), trade_no=q.get("trade_no"),
        status=_list(request, "status") or ["FAILED", "REJECTED"], system=q.get("system"), kind=q.get("kind"),
        charge_id=q.get("charge_id"), limit=_limit(request), reveal=unmasked)
    return json_response({"items": items})


async def retry_writeback(request: web.Request) -> web.Response:
    """Retry a failed or rejected write-back now: a payment id (确认收费) or a refund id (退费回写)."""
    core = request.app[CORE]
    row = await core.writebacks.retry_now(request.match_info["id"], actor(request))
    return json_response(writeback_out(row, core.vault))


async def refund_writeback(request: web.Request) -> web.Response:
    """Apply for the original-route refund (原路退款) of a failed or rejected write-back's payment,
    through its single-sided case and the approval path."""
    body = await parse(request, ReasonIn)
    return json_response(await request.app[CORE].writebacks.request_refund(
        request.match_info["payment_id"], actor=actor(request), reason=body.reason), status=202)


# --- single-sided cases -----------------------------------------------------------------------------
async def cases(request: web.Request) -> web.Response:
    return json_response(await request.app[CORE].cases.search(
        status=_list(request, "status"), system=request.query.get("system"), day=_day(request),
        limit=_limit(request)))


async def case_detail(request: web.Request) -> web.Response:
    """One case with its payment, write-back, history and notices; ``?unmask=1`` shows personal data."""
    unmasked = await reveal(request, request.match_info["id"])
    return json_response(await request.app[CORE].cases.detail(request.match_info["id"], reveal=unmasked))


async def case_refund(request: web.Request) -> web.Response:
    body = await parse(request, ReasonIn)
    return json_response(await request.app[CORE].cases.request_refund(
        request.match_info["id"], actor=actor(request), reason=body.reason), status=202)


async def case_retry(request: web.Request) -> web.Response:
    return json_response(await request.app[CORE].cases.retry_write_back(request.match_info["id"],
                                                                         actor=actor(request)))


async def case_resolve(request: web.Request) -> web.Response:
    body = await parse(request, NoteIn)
    return json_response(await request.app[CORE].cases.resolve_manually(request.match_info["id"],
                                                                         actor=actor(request), note=body.note))


# --- approvals ---------------------------------------------------------------------------------------
async def approvals(request: web.Request) -> web.Response:
    view = request.query.get("view", "waiting")
    if view not in ("mine", "waiting", "done", "all"):
        raise ValidationFailed("view is mine, waiting, done or all")
    return json_response({"items": await request.app[CORE].approvals.list(
        view=view, actor=actor(request), roles=roles(request), status=request.query.get("status"),
        limit=_limit(request))})


async def _decide(request: web.Request, approve: bool) -> web.Response:
    from ..services.approvals import approval_out

    body = await parse(request, DecisionIn)
    row = await request.app[CORE].approvals.decide(request.match_info["id"], actor=actor(request),
                                                    roles=roles(request), approve=approve, comment=body.comment)
    return json_response(approval_out(row))


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


async def withdraw(request: web.Request) -> web.Response:
    from ..services.approvals import approval_out

    body = await parse(request, DecisionIn)
    row = await request.app[CORE].approvals.withdraw(request.match_info["id"], actor=actor(request),
                                                      comment=body.comment)
    return json_response(approval_out(row))


async def batch(request: web.Request) -> web.Response:
    body = await parse(request, BatchIn)
    return json_response({"results": await request.app[CORE].approvals.batch(
        body.ids, actor=actor(request), roles=roles(request), approve=body.decision == "approve",
        comment=body.comment)})


# --- notifiers -----------------------------------------------------------------------------------------
async def notifiers(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return json_response({"items": await core.notices.list_notifiers(),
                          "available": sorted(core.registry.notifiers)})


async def put_notifier(request: web.Request) -> web.Response:
    body = await parse(request, NotifierIn)
    return json_response(await request.app[CORE].notices.put_notifier(actor(request), request.match_info["name"],
                                                                      body))


async def notices(request: web.Request) -> web.Response:
    """Notices to people; their payloads' personal data masked unless ``?unmask=1``."""
    from ..vault import mask

    unmasked = await reveal(request, "notices")
    out = await request.app[CORE].notices.search(
        subject_id=request.query.get("subject_id"), status=request.query.get("status"), limit=_limit(request))
    if not unmasked:
        out["items"] = [{**n, "payload": mask(n["payload"])} for n in out["items"]]
    return json_response(out)


async def resend_notice(request: web.Request) -> web.Response:
    try:
        nid = int(request.match_info["id"])
    except ValueError as exc:
        raise ValidationFailed("notice id must be an integer") from exc
    return json_response(await request.app[CORE].notices.resend(nid, actor(request)))


def add_his_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/his/pending-charges", get_pending_charges)
    r.add_get("/v1/payments/{payment_id}/his", payment_his)
    r.add_get("/v1/admin/his/systems", systems)
    r.add_put("/v1/admin/his/systems/{id}", put_system)
    r.add_get("/v1/admin/his/systems/{id}/bill", system_bill)
    r.add_post("/v1/admin/his/systems/{id}/bill-import", import_bill)
    r.add_get("/v1/admin/his/writebacks", writebacks)
    r.add_post("/v1/admin/his/writebacks/{id}/retry", retry_writeback)
    r.add_post("/v1/admin/his/writebacks/{payment_id}/refund", refund_writeback)
    r.add_get("/v1/admin/cases", cases)
    r.add_get("/v1/admin/cases/{id}", case_detail)
    r.add_post("/v1/admin/cases/{id}/refund", case_refund)
    r.add_post("/v1/admin/cases/{id}/retry-write-back", case_retry)
    r.add_post("/v1/admin/cases/{id}/resolve", case_resolve)
    r.add_get("/v1/admin/approvals", approvals)
    r.add_post("/v1/admin/approvals/batch", batch)
    r.add_post("/v1/admin/approvals/{id}/approve", approve)
    r.add_post("/v1/admin/approvals/{id}/reject", reject)
    r.add_post("/v1/admin/approvals/{id}/withdraw", withdraw)
    r.add_get("/v1/admin/notifiers", notifiers)
    r.add_put("/v1/admin/notifiers/{name}", put_notifier)
    r.add_get("/v1/admin/notices", notices)
    r.add_post("/v1/admin/notices/{id}/resend", resend_notice)
