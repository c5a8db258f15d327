"""Identify a person and manage visits at an insurance centre (for kiosks and HIS vendors).

These calls change the centre's records of a visit (registration, fees, admission,
discharge) but move no money, so the gateway does not keep a ledger of them: the
caller keeps ``mdtrt_id`` and every answer carries the call's ``msgid``. An
unknown outcome reaches the caller as an ``INSURANCE_*`` error with the msgid,
which ``reverse_call`` (2601) undoes. Money moves only by settlements
(:mod:`.insurance_settlements`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..insurance import (AdmissionRequest, CertType, DischargeRequest, EVoucherRequest, OutpatientRegistration,
                         PersonQuery, Settlement, SettleRequest, VisitInfo, VisitRef)
from .insurance_schemas import (AdmissionIn, CancelRegisterIn, DischargeIn, FeesIn, IdentifyIn, RegisterIn,
                                ReverseCallIn, RevokeFeesIn, SettleInputs, VisitIn, VisitInfoIn, person_out)
from .insurance_steps import settlement_fields

if TYPE_CHECKING:
    from ..core import Core


def _core_model(model: Any, body: Any) -> Any:
    return model.model_validate(body.model_dump(exclude={"centre"}))


def _ack(ack: Any) -> dict[str, Any]:
    return {"infno": ack.infno, "msgid": ack.msgid, "warn_msg": ack.warn_msg, "output": ack.output}


class InsuranceVisits:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def _adapter(self, centre: str | None) -> tuple[str, Any]:
        cid = await self.core.insurance_centres.resolve(centre)
        return cid, await self.core.insurance_centres.adapter(cid)

    async def _call(self, centre: str, op: str, coro: Any, request: Any = None) -> Any:
        return await self.core.insurance_centres.call(centre, op, coro, request=request)

    # --- identify -------------------------------------------------------------------------------
    async def identify(self, body: IdentifyIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        cert: dict[str, Any] | None = None
        if body.method == "evoucher":
            token = body.ec_token
            if token is None:
                ev = await self._call(cid, "ec.query", adapter.decode_evoucher(EVoucherRequest(
                    qr_code=body.qr_code, business_type=body.business_type, operator_id=body.operator_id,
                    operator_name=body.operator_name)), request={"business_type": body.business_type})
                token = ev.ec_token
            query = PersonQuery(cert_type=CertType.EVOUCHER, cert_no=token)
            # the token is what later calls name the patient by (mdtrt_cert_no); it is not personal data
            cert = {"cert_type": CertType.EVOUCHER.value, "cert_no": token}
        elif body.method == "id_card":
            query = PersonQuery(cert_type=CertType.ID_CARD, cert_no=body.id_no or "")
        else:
            query = PersonQuery(cert_type=CertType.SOCIAL_CARD, cert_no=body.card_no or "", card_sn=body.card_sn)
        person = await self._call(cid, "1101", adapter.person_info(query), request=query)
        return {"centre": cid, **person_out(person, cert)}

    # --- outpatient -----------------------------------------------------------------------------
    async def register(self, body: RegisterIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        req = _core_model(OutpatientRegistration, body)
        visit = await self._call(cid, "2201", adapter.register_outpatient(req), request=req)
        return {"centre": cid, "mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no, "ipt_otp_no": visit.ipt_otp_no,
                "msgid": visit.msgid, "warn_msg": visit.warn_msg}

    async def cancel_registration(self, body: CancelRegisterIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        return _ack(await self._call(cid, "2202", adapter.cancel_outpatient(body.visit, body.ipt_otp_no),
                                     request=body))

    async def visit_info(self, body: VisitInfoIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        info = _core_model(VisitInfo, body)
        return _ack(await self._call(cid, "2203", adapter.upload_visit_info(info), request=info))

    async def upload_fees(self, body: FeesIn, *, inpatient: bool) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        fn = adapter.upload_inpatient_fees if inpatient else adapter.upload_outpatient_fees
        result = await self._call(cid, "2301" if inpatient else "2204", fn(body.visit, body.lines), request=body)
        await self.core.insurance_fees.record_upload(cid, body, result, inpatient=inpatient)
        return {"msgid": result.msgid, "warn_msg": result.warn_msg, "total": result.total,
                "lines": [line.model_dump(mode="json") for line in result.lines]}

    async def revoke_fees(self, body: RevokeFeesIn, *, inpatient: bool) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        fn = adapter.revoke_inpatient_fees if inpatient else adapter.revoke_outpatient_fees
        ack = await self._call(cid, "2302" if inpatient else "2205", fn(body.visit, body.batch), request=body)
        await self.core.insurance_fees.record_revoke(cid, body, inpatient=inpatient)
        return _ack(ack)

    async def pre_settle(self, body: SettleInputs) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        req = SettleRequest(visit=body.visit, insutype=body.insutype, med_type=body.med_type,
                            cert_type=body.cert_type, cert_no=body.cert_no, card_sn=body.card_sn, total=body.total,
                            psn_setlway=body.psn_setlway, chrg_bchno=body.chrg_bchno, use_account=body.use_account,
                            mid_settlement=body.mid_settlement, discharge_time=body.discharge_time,
                            extra=body.extra)
        inpatient = body.kind == "inpatient"
        fn = adapter.pre_settle_inpatient if inpatient else adapter.pre_settle_outpatient
        s: Settlement = await self._call(cid, "2303" if inpatient else "2206", fn(req), request=req)
        s.split.check()
        f = settlement_fields(s)
        return {"centre": cid, "kind": body.kind, "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no, "msgid": s.msgid,
                "warn_msg": s.warn_msg, "insutype": s.insutype, "med_type": s.med_type,
                "amounts": {"total": f["total"], "fund": f["fund_total"], "funds": f["funds"],
                            "personal_account": f["acct_pay"], "mutual_aid_account": f["acct_mulaid_pay"],
                            "wallet": f["wallet_pay"], "cash": f["cash_pay"], "hospital": f["hosp_part"],
                            "psn_part": f["psn_part"]},
                "scope": f["scope"], "fund_payments": f["fund_payments"]}

    # --- inpatient -------------------------------------------------------------------------------
    async def admit(self, body: AdmissionIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        req = _core_model(AdmissionRequest, body)
        visit = await self._call(cid, "2401", adapter.admit(req), request=req)
        return {"centre": cid, "mdtrt_id": visit.mdtrt_id, "psn_no": visit.psn_no, "ipt_no": visit.ipt_otp_no,
                "msgid": visit.msgid, "warn_msg": visit.warn_msg}

    async def cancel_admission(self, body: VisitIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        return _ack(await self._call(cid, "2404", adapter.cancel_admission(_core_model(VisitRef, body)),
                                     request=body))

    async def discharge(self, body: DischargeIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        req = _core_model(DischargeRequest, body)
        return _ack(await self._call(cid, "2402", adapter.discharge(req), request=req))

    async def cancel_discharge(self, body: VisitIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        return _ack(await self._call(cid, "2405", adapter.cancel_discharge(_core_model(VisitRef, body)),
                                     request=body))

    async def reverse_call(self, body: ReverseCallIn) -> dict[str, Any]:
        cid, adapter = await self._adapter(body.centre)
        return _ack(await self._call(cid, "2601", adapter.reverse_call(body.psn_no, body.insuplc_admdvs, body.omsgid,
                                                                     body.oinfno), request=body))
