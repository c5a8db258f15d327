"""Control surface of the simulated centre under ``/_sim/`` (loopback sandbox only)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from aiohttp import web

from gateway.testing.simkit import read_json_object

from .sim_http import CENTRE_KEY, FAULTS_KEY, SECURITY_KEY, _json
from .sim_model import CatalogueItem, SimInsurance, SimPerson
from .sim_faults import KINDS
from .sim_security import SimSm


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request, empty_ok=False)


def _person_or_404(request: web.Request) -> SimPerson:
    person = request.app[CENTRE_KEY].persons.get(request.match_info["psn_no"])
    if person is None:
        raise web.HTTPNotFound(text='{"error":"no such person"}', content_type="application/json")
    return person


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/_sim"):
        return await handler(request)
    try:
        return await handler(request)
    except (ValueError, TypeError, KeyError) as exc:
        return _json({"error": str(exc)}, status=400)


async def index(request: web.Request) -> web.Response:
    centre = request.app[CENTRE_KEY]
    return _json({"channel": "nhsa", "profile": centre.profile.name, "fixmedins_code": centre.fixmedins_code,
                  "mdtrtarea_admvs": centre.admvs, "fault_kinds": list(KINDS),
                  "persons": [p.as_sim() for p in centre.persons.values()],
                  # fee lines (2204/2301) must use one of these med_list_codg; add more with POST /_sim/catalogue
                  "catalogue": [c.as_sim() for c in centre.catalogue.values()]})


async def list_persons(request: web.Request) -> web.Response:
    return _json([p.as_sim() for p in request.app[CENTRE_KEY].persons.values()])


async def create_person(request: web.Request) -> web.Response:
    centre, data = request.app[CENTRE_KEY], await _body(request)
    admvs = str(data.get("insuplc_admdvs", centre.admvs))
    insurances = [SimInsurance(str(i["insutype"]), str(i.get("psn_type", "11")), admvs, bool(i.get("civil_servant")))
                  for i in data.get("insurances", [{"insutype": "310"}])]
    person = SimPerson(
        psn_no=str(data["psn_no"]), name=str(data["name"]), certno=str(data["certno"]),
        gender=str(data.get("gender", "1")), birthday=dt.date.fromisoformat(data.get("birthday", "1980-01-01")),
        insuplc_admdvs=admvs, insurances=insurances, acct_balance=int(data.get("acct_balance", 0)),
        wallet_balance=int(data.get("wallet_balance", 0)), mulaid_balance=int(data.get("mulaid_balance", 0)),
        card_no=data.get("card_no"), card_sn=data.get("card_sn"), password=data.get("password"),
        qr_code=data.get("qr_code"), medical_aid=bool(data.get("medical_aid", False)))
    if person.psn_no in centre.persons:
        return _json({"error": "person exists"}, status=409)
    centre.persons[person.psn_no] = person
    return _json(person.as_sim(), status=201)


async def get_person(request: web.Request) -> web.Response:
    return _json(_person_or_404(request).as_sim())


async def set_balances(request: web.Request) -> web.Response:
    person, data = _person_or_404(request), await _body(request)
    for key in ("acct_balance", "wallet_balance", "mulaid_balance"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} must be integer fen")
            setattr(person, key, value)
    return _json(person.as_sim())


async def list_settlements(request: web.Request) -> web.Response:
    return _json([s.as_sim() for s in request.app[CENTRE_KEY].settlements.values()])


async def get_settlement(request: web.Request) -> web.Response:
    setl = request.app[CENTRE_KEY].settlements.get(request.match_info["setl_id"])
    if setl is None:
        return _json({"error": "no such settlement"}, status=404)
    return _json(setl.as_sim())


async def lose_settlement(request: web.Request) -> web.Response:
    """The centre loses a settlement (a reconciliation difference: the hospital has it, the centre not)."""
    setl = request.app[CENTRE_KEY].settlements.pop(request.match_info["setl_id"], None)
    if setl is None:
        return _json({"error": "no such settlement"}, status=404)
    return _json({"lost": setl.setl_id})


async def copy_settlement(request: web.Request) -> web.Response:
    """A settlement the centre holds and the hospital does not (made outside the gateway): a copy of
    an existing one under a new ``setl_id``, for reconciliation drills."""
    centre = request.app[CENTRE_KEY]
    setl = centre.settlements.get(request.match_info["setl_id"])
    if setl is None:
        return _json({"error": "no such settlement"}, status=404)
    import dataclasses

    copy = dataclasses.replace(setl, setl_id=centre.next_id("S"), fee_sns=[], reversed_by=None)
    centre.settlements[copy.setl_id] = copy
    return _json(copy.as_sim(), status=201)


async def get_visit(request: web.Request) -> web.Response:
    visit = request.app[CENTRE_KEY].visits.get(request.match_info["mdtrt_id"])
    if visit is None:
        return _json({"error": "no such visit"}, status=404)
    return _json({"mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no, "kind": visit.kind, "status": visit.status,
                  "med_type": visit.med_type, "fees": [{"feedetl_sn": f.feedetl_sn, "amount": f.amount,
                                                        "revoked": f.revoked, "setl_id": f.setl_id}
                                                       for f in visit.fees.values()]})


async def add_fault(request: web.Request) -> web.Response:
    return _json(request.app[FAULTS_KEY].add(await _body(request)).as_dict(), status=201)


async def list_faults(request: web.Request) -> web.Response:
    return _json([f.as_dict() for f in request.app[FAULTS_KEY].faults])


async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].clear()
    return _json({"cleared": True})


async def expire_sign_ins(request: web.Request) -> web.Response:
    return _json({"expired": request.app[CENTRE_KEY].expire_sign_ins()})


async def revoke_tokens(request: web.Request) -> web.Response:
    security = request.app[SECURITY_KEY]
    if isinstance(security, SimSm):
        security.revoke_tokens()
    return _json({"revoked": True})


async def add_catalogue(request: web.Request) -> web.Response:
    data = await _body(request)
    item = CatalogueItem(str(data["code"]), str(data.get("name", data["code"])), str(data.get("chrgitm_lv", "01")),
                         Decimal(str(data.get("selfpay_prop", "0"))), str(data.get("med_chrgitm_type", "09")),
                         Decimal(str(data["price_limit"])) if data.get("price_limit") else None)
    request.app[CENTRE_KEY].catalogue[item.code] = item
    return _json({"code": item.code}, status=201)


async def list_calls(request: web.Request) -> web.Response:
    return _json(request.app[CENTRE_KEY].calls)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim", index)
    r.add_get("/_sim/persons", list_persons)
    r.add_post("/_sim/persons", create_person)
    r.add_get("/_sim/persons/{psn_no}", get_person)
    r.add_put("/_sim/persons/{psn_no}/balances", set_balances)
    r.add_get("/_sim/settlements", list_settlements)
    r.add_get("/_sim/settlements/{setl_id}", get_settlement)
    r.add_delete("/_sim/settlements/{setl_id}", lose_settlement)
    r.add_post("/_sim/settlements/{setl_id}/copy", copy_settlement)
    r.add_get("/_sim/visits/{mdtrt_id}", get_visit)
    r.add_get("/_sim/faults", list_faults)
    r.add_post("/_sim/faults", add_fault)
    r.add_delete("/_sim/faults", clear_faults)
    r.add_post("/_sim/signins/expire", expire_sign_ins)
    r.add_post("/_sim/tokens/revoke", revoke_tokens)
    r.add_post("/_sim/catalogue", add_catalogue)
    r.add_get("/_sim/calls", list_calls)
