"""JSON control surface of the simulated hospital, mounted under ``/_sim/`` by each simulator.

Unsigned and for loopback sandboxes only: tests and the demo use it to look at
patients, add charges, read what the HIS recorded (payments and refunds under
``records``, insurance settlements under ``insurance-settlements``) and plan faults. Amounts are fen,
times ISO 8601 in UTC.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .faults import KINDS, OPS
from .model import CST, Charge, InsuranceEntry, Item, Patient, Record, SimHisRefusal, SimHospital

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def to_json(obj: Any) -> Any:
    """Dataclasses, lists and datetimes → JSON-ready values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    return obj


def _answer(status: int, message: str, code: str | None = None) -> web.Response:
    return web.json_response({"error": message, "code": code}, status=status)


def _guard(handler: Handler) -> Handler:
    # The control surface answers JSON errors without a middleware, because the
    # application it is mounted on belongs to the simulator that mounts it.
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimHisRefusal as exc:
            return _answer(404 if exc.code.endswith("NOT_FOUND") else 409, exc.message, exc.code)
        except (ValueError, TypeError, KeyError) as exc:
            return _answer(400, str(exc))

    return guarded


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _patient_view(hospital: SimHospital, patient: Patient) -> dict[str, Any]:
    return {**to_json(patient),
            "visits": [to_json(v) for v in hospital.visits.values() if v.patient_id == patient.patient_id],
            "pending": [to_json(c) for c in hospital.pending(patient.patient_id)]}


def _items(raw: Any) -> list[Item] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError("items must be a list")
    return [Item(name=str(i["name"]), code=str(i.get("code", "999999")), quantity=str(i.get("quantity", "1")),
                 amount=int(i["amount"])) for i in raw]


def add_control_routes(app: web.Application, hospital: SimHospital) -> None:
    """Mount ``/_sim/…`` on ``app``, acting on ``hospital``."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "patients": len(hospital.patients),
                                  "pending": sum(1 for c in hospital.charges.values() if c.status == "pending"),
                                  "records": len(hospital.records), "insurance_settlements": len(hospital.insurance),
                                  "faults": hospital.faults.as_dict()})

    async def patients(request: web.Request) -> web.Response:
        return web.json_response([_patient_view(hospital, p) for p in hospital.patients.values()])

    async def add_charge(request: web.Request) -> web.Response:
        data = await _body(request)
        amount = data.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValueError("amount must be an integer number of fen")
        charge: Charge = hospital.add_charge(
            str(data["patient_id"]), amount, bill_type=str(data.get("bill_type") or "outpatient_settlement"),
            items=_items(data.get("items")), department=data.get("department"), visit_no=data.get("visit_no"))
        return web.json_response(to_json(charge), status=201)

    async def records(request: web.Request) -> web.Response:
        q = request.query
        found: list[Record] = list(hospital.records)
        if q.get("payment_id"):
            found = [r for r in found if r.payment_id == q["payment_id"]]
        if q.get("bill_type"):
            found = [r for r in found if r.bill_type == q["bill_type"]]
        if q.get("day"):
            day = dt.date.fromisoformat(q["day"])
            found = [r for r in found if r.occurred_at.astimezone(CST).date() == day]
        return web.json_response(to_json(found))

    async def insurance(request: web.Request) -> web.Response:
        """医保结算登记: the insurance settlements the HIS recorded, buckets apart (fen)."""
        q = request.query
        found: list[InsuranceEntry] = list(hospital.insurance)
        for key in ("settlement_id", "setl_id", "patient_id", "mdtrt_id", "status"):
            if q.get(key):
                found = [e for e in found if getattr(e, key) == q[key]]
        return web.json_response(to_json(found))

    async def cancel_record(request: web.Request) -> web.Response:
        return web.json_response(to_json(hospital.cancel_record(request.match_info["serial"])))

    async def set_fault(request: web.Request) -> web.Response:
        data = await _body(request)
        count = data.get("count")
        hospital.faults.set(str(data.get("op", "*")), str(data.get("kind", "")),
                            count=int(count) if count is not None else None, after=bool(data.get("after", False)))
        return web.json_response({"faults": hospital.faults.as_dict(), "ops": list(OPS), "kinds": list(KINDS)},
                                 status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": hospital.faults.as_dict(), "ops": list(OPS), "kinds": list(KINDS)})

    async def clear_faults(request: web.Request) -> web.Response:
        hospital.faults.clear()
        return web.json_response({"faults": {}})

    r = app.router
    r.add_get("/_sim/health", _guard(health))
    r.add_get("/_sim/patients", _guard(patients))
    r.add_post("/_sim/charges", _guard(add_charge))
    r.add_get("/_sim/records", _guard(records))
    r.add_post("/_sim/records/{serial}/cancel", _guard(cancel_record))
    r.add_get("/_sim/insurance-settlements", _guard(insurance))
    r.add_get("/_sim/faults", _guard(list_faults))
    r.add_post("/_sim/faults", _guard(set_fault))
    r.add_delete("/_sim/faults", _guard(clear_faults))
