"""Insurance routes: identify, visits, pre-settlement and mixed settlements for callers;
centres and the insurance ledger for administrators. Thin: parse, call, serialise."""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from ..errors import ValidationFailed
from ..services.insurance_centres import CentreIn
from ..services.insurance_schemas import (AdmissionIn, CancelRegisterIn, DischargeIn, FeesIn, IdentifyIn, RegisterIn,
                                          ReverseCallIn, RevokeFeesIn, SettleInputs, SettlementCreate, VisitIn,
                                          VisitInfoIn, his_writeback_out, receipt_out, settlement_out)
from .admin import actor
from .handlers import json_response, parse
from .keys import CORE, REQUEST_APP


def _app_id(request: web.Request) -> str:
    return request[REQUEST_APP].id


def _visit_route(model: type[BaseModel], method: str, **kw: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await parse(request, model)
        return json_response(await getattr(request.app[CORE].insurance_visits, method)(body, **kw))

    return handler


async def _settlement(request: web.Request, pair: tuple[Any, Any]) -> web.Response:
    row, payment = pair
    core = request.app[CORE]
    out = settlement_out(row, payment, core.vault)
    out["his"] = his_writeback_out(await core.writebacks.for_settlement(row.id))
    return json_response(out)


# --- settlements ----------------------------------------------------------------------------------------
async def create_settlement(request: web.Request) -> web.Response:
    body = await parse(request, SettlementCreate)
    return await _settlement(request, await request.app[CORE].insurance_settlements.create(_app_id(request), body))


async def get_settlement(request: web.Request) -> web.Response:
    return await _settlement(request, await request.app[CORE].insurance_settlements.get(
        _app_id(request), request.match_info["id"]))


async def find_settlement(request: web.Request) -> web.Response:
    out_settle_no = request.query.get("out_settle_no")
    if not out_settle_no:
        raise ValidationFailed("query parameter out_settle_no is required")
    return await _settlement(request, await request.app[CORE].insurance_settlements.by_out_settle_no(
        _app_id(request), out_settle_no))


async def cancel_settlement(request: web.Request) -> web.Response:
    return await _settlement(request, await request.app[CORE].insurance_settlements.cancel(
        _app_id(request), request.match_info["id"]))


async def reverse_settlement(request: web.Request) -> web.Response:
    return await _settlement(request, await request.app[CORE].insurance_settlements.reverse(
        _app_id(request), request.match_info["id"]))


async def fee_list(request: web.Request) -> web.Response:
    """Discharge fee list (出院费用清单) of a visit, for kiosk printing."""
    return json_response(await request.app[CORE].insurance_fees.fee_list(request.match_info["mdtrt_id"],
                                                                         request.query.get("centre")))


async def settlement_receipt(request: web.Request) -> web.Response:
    core = request.app[CORE]
    row, payment = await core.insurance_settlements.get(_app_id(request), request.match_info["id"])
    return json_response(receipt_out(row, payment, core.vault))


async def settlement_events(request: web.Request) -> web.Response:
    core = request.app[CORE]
    row, _ = await core.insurance_settlements.get(_app_id(request), request.match_info["id"])
    events = await core.insurance_settlements.store.events(row.id)
    return json_response([{"from_status": e.from_status, "to_status": e.to_status, "action": e.action,
                           "source": e.source, "detail": e.detail, "created_at": e.created_at.isoformat()}
                          for e in events])


# --- administration -------------------------------------------------------------------------------------
async def centres(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].insurance_centres.list()})


async def put_centre(request: web.Request) -> web.Response:
    body = await parse(request, CentreIn)
    return json_response(await request.app[CORE].insurance_centres.put(actor(request), request.match_info["id"],
                                                                      body))


def _dates(request: web.Request) -> tuple[dt.date, dt.date]:
    try:
        begin = dt.date.fromisoformat(request.query["begin"])
        end = dt.date.fromisoformat(request.query.get("end") or request.query["begin"])
    except (KeyError, ValueError) as exc:
        raise ValidationFailed("begin (and optionally end) are required, as YYYY-MM-DD") from exc
    if end < begin:
        raise ValidationFailed("end is before begin")
    return begin, end


async def ledger_totals(request: web.Request) -> web.Response:
    begin, end = _dates(request)
    return json_response({"items": await request.app[CORE].insurance_settlements.daily_totals(
        begin, end, request.query.get("centre"))})


async def ledger_lines(request: web.Request) -> web.Response:
    begin, end = _dates(request)
    return json_response({"items": await request.app[CORE].insurance_settlements.ledger_lines(
        begin, end, request.query.get("centre"))})


def add_insurance_routes(app: web.Application) -> None:
    r = app.router
    p = "/v1/insurance"
    r.add_post(f"{p}/persons/identify", _visit_route(IdentifyIn, "identify"))
    r.add_post(f"{p}/outpatient/registrations", _visit_route(RegisterIn, "register"))
    r.add_post(f"{p}/outpatient/registrations/cancel", _visit_route(CancelRegisterIn, "cancel_registration"))
    r.add_post(f"{p}/outpatient/visit-info", _visit_route(VisitInfoIn, "visit_info"))
    r.add_post(f"{p}/outpatient/fees", _visit_route(FeesIn, "upload_fees", inpatient=False))
    r.add_post(f"{p}/outpatient/fees/revoke", _visit_route(RevokeFeesIn, "revoke_fees", inpatient=False))
    r.add_post(f"{p}/inpatient/admissions", _visit_route(AdmissionIn, "admit"))
    r.add_post(f"{p}/inpatient/admissions/cancel", _visit_route(VisitIn, "cancel_admission"))
    r.add_post(f"{p}/inpatient/fees", _visit_route(FeesIn, "upload_fees", inpatient=True))
    r.add_post(f"{p}/inpatient/fees/revoke", _visit_route(RevokeFeesIn, "revoke_fees", inpatient=True))
    r.add_post(f"{p}/inpatient/discharges", _visit_route(DischargeIn, "discharge"))
    r.add_post(f"{p}/inpatient/discharges/cancel", _visit_route(VisitIn, "cancel_discharge"))
    r.add_post(f"{p}/pre-settlements", _visit_route(SettleInputs, "pre_settle"))
    r.add_post(f"{p}/calls/reverse", _visit_route(ReverseCallIn, "reverse_call"))
    r.add_post(f"{p}/settlements", create_settlement)
    r.add_get(f"{p}/settlements", find_settlement)
    r.add_get(f"{p}/settlements/{{id}}", get_settlement)
    r.add_get(f"{p}/settlements/{{id}}/receipt", settlement_receipt)
    r.add_get(f"{p}/visits/{{mdtrt_id}}/fee-list", fee_list)
    r.add_get(f"{p}/settlements/{{id}}/events", settlement_events)
    r.add_post(f"{p}/settlements/{{id}}/cancel", cancel_settlement)
    r.add_post(f"{p}/settlements/{{id}}/reverse", reverse_settlement)
    r.add_get("/v1/admin/insurance/centres", centres)
    r.add_put("/v1/admin/insurance/centres/{id}", put_centre)
    r.add_get("/v1/admin/insurance/ledger/totals", ledger_totals)
    r.add_get("/v1/admin/insurance/ledger/lines", ledger_lines)
