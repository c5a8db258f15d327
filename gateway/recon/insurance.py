"""Insurance reconciliation (医保对账): totals (3201), then details (3202) where totals differ.

For a day or a month, per insurance centre:

1. the insurance ledger's totals by insutype + clr_type + setl_optins (reversals
   netted) go to the centre as 3201; each group comes back balanced or not;
2. for every unbalanced group, the group's settlements and reversals are uploaded as
   the 3202 detail file (9101), and the centre's result file (9102) says per
   settlement whether it agrees. Each disagreement becomes a difference:
   ``ins_amount`` (amounts or refund flag differ), ``ins_hospital_only`` (the centre
   has no such settlement) or ``ins_centre_only`` (the hospital has none);
3. a centre-only settlement can be reversed at the centre (冲正) after approval by the
   amount tier's role.

The run and its per-group answers are kept (mode ``ins``) so the drill-down from
totals to the differing settlements can be shown for any past period.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection

from ..db.models import Approval, CaseEvent, ReconDiff, utcnow
from ..errors import InvalidState, ValidationFailed, YinyiError
from .diffs import INS_KIND, finish_run, start_run, upsert_diffs
from ..insurance import DetailReconLine, DetailReconRequest, ReconTotals, SettlementRef, VisitRef

if TYPE_CHECKING:
    from ..core import Core

_D = ReconDiff.__table__


def _group_key(line: dict[str, Any]) -> tuple[str, str, str]:
    return line["insutype"], line["clr_type"] or "", line["setl_optins"] or ""


class InsuranceRecon:
    def __init__(self, core: Core) -> None:
        self.core = core
        core.approvals.register("ins_centre_reversal", self._on_reversal_decision)

    async def run(self, begin: dt.date, end: dt.date | None = None, *, centre_id: str | None = None,
                  actor: str) -> dict[str, Any]:
        core = self.core
        end = end or begin
        if end < begin:
            raise ValidationFailed("end is before begin")
        centre = await core.insurance_centres.resolve(centre_id)
        adapter = await core.insurance_centres.adapter(centre)
        run_id = "R" + secrets.token_hex(8)
        await start_run(core, run_id, begin, "ins", 0, actor)
        try:
            lines = await core.insurance_settlements.ledger_lines(begin, end, centre)
            by_group: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
            for line in lines:
                by_group[_group_key(line)].append(line)
            groups = []
            found: list[dict[str, Any]] = []
            for total in await core.insurance_settlements.daily_totals(begin, end, centre):
                key = (total["insutype"], total["clr_type"], total["setl_optins"])
                req = ReconTotals(insutype=key[0], clr_type=key[1], setl_optins=key[2], begin_date=begin,
                                  end_date=end, medfee_sumamt=total["medfee_sumamt"],
                                  fund_pay_sumamt=total["fund_pay_sumamt"], acct_pay=total["acct_pay"],
                                  count=total["count"])
                res = await core.insurance_centres.call(centre, "reconcile_totals", adapter.reconcile_totals(req),
                                                        request=req)
                group = {**total, "balanced": res.balanced, "description": res.description, "details": None}
                if not res.balanced:
                    group["details"] = await self._details(centre, adapter, key, begin, end, by_group[key], found)
                groups.append(group)
            recorded = await self._record(begin, run_id, centre, found)
            summary = {"centre": centre, "begin": begin.isoformat(), "end": end.isoformat(), "groups": groups,
                       "balanced": all(g["balanced"] for g in groups), "differences": len(found),
                       **recorded}
        except Exception as exc:
            await finish_run(core, run_id, exc=exc)
            raise
        await finish_run(core, run_id, summary=summary)
        await core.ledger.audit(actor, "recon.insurance", run_id, {"centre": centre, "begin": begin.isoformat(),
                                                                   "end": end.isoformat(),
                                                                   "balanced": summary["balanced"]})
        return await core.recon.run_out(run_id)

    async def _details(self, centre: str, adapter: Any, key: tuple[str, str, str], begin: dt.date, end: dt.date,
                       lines: list[dict[str, Any]], found: list[dict[str, Any]]) -> dict[str, Any]:
        req = DetailReconRequest(setl_optins=key[2], begin_date=begin, end_date=end, clr_type=key[1] or None,
                                 lines=[DetailReconLine(setl_id=x["setl_id"], mdtrt_id=x["mdtrt_id"],
                                                        psn_no=x["psn_no"], medfee_sumamt=x["medfee_sumamt"],
                                                        fund_pay_sumamt=x["fund_pay_sumamt"], acct_pay=x["acct_pay"],
                                                        refund=x["refund"]) for x in lines])
        res = await self.core.insurance_centres.call(centre, "reconcile_details", adapter.reconcile_details(req),
                                                     request={"setl_optins": key[2], "lines": len(lines)})
        ours = {(x["setl_id"], x["refund"]): x for x in lines}
        for r in res.unbalanced:
            mine = ours.get((r.setl_id, r.refund)) or next((x for x in lines if x["setl_id"] == r.setl_id), None)
            if mine is None:
                cls = "ins_centre_only"
            elif r.medfee_sumamt is None:
                cls = "ins_hospital_only"
            else:
                cls = "ins_amount"
            found.append({"setl_id": r.setl_id, "cls": cls, "mdtrt_id": r.mdtrt_id, "psn_no": r.psn_no,
                          "msgid": r.msgid, "refund": r.refund, "memo": r.memo, "insutype": key[0],
                          "clr_type": key[1], "setl_optins": key[2],
                          "hospital_amount": mine["medfee_sumamt"] if mine else None,
                          "centre_amount": r.medfee_sumamt, "settlement_id": mine["settlement_id"] if mine else None})
        return {"file_qury_no": res.file_qury_no, "lines": len(res.lines), "unbalanced": len(res.unbalanced)}

    async def _record(self, day: dt.date, run_id: str, centre: str, found: list[dict[str, Any]]) -> dict[str, int]:
        items = [{"txn_key": f"{f['setl_id']}{'-R' if f['refund'] else ''}", "kind": INS_KIND, "cls": f["cls"],
                  "his_amount": f["hospital_amount"], "platform_amount": f["hospital_amount"],
                  "channel_amount": f["centre_amount"], "in_his": f["hospital_amount"] is not None,
                  "in_platform": f["hospital_amount"] is not None, "in_channel": f["cls"] != "ins_hospital_only",
                  "channel": f"insurance:{centre}", "his_serial": f["mdtrt_id"], "channel_trade_no": f["msgid"],
                  "order_ref": f"{f['psn_no']}|{f['insutype']}|{f['clr_type']}|{f['setl_optins']}",
                  "platform_status": "reversal" if f["refund"] else "settlement", "his_status": f["memo"]}
                 for f in found]
        return await upsert_diffs(self.core, day, run_id, (INS_KIND,), items,
                                  scope=lambda d: (d.channel or "") == f"insurance:{centre}")

    # --- centre-only settlements: reversal after approval ------------------------------------------
    async def request_reversal(self, diff_id: str, *, actor: str, reason: str | None) -> dict[str, Any]:
        d = await self.core.recon._diff_row(diff_id)
        if d.kind != INS_KIND or d.cls != "ins_centre_only":
            raise InvalidState("only a settlement the centre has and the hospital has not can be reversed here",
                               current_class=d.cls)
        if d.status != "OPEN":
            raise InvalidState("the difference is not open", current_status=d.status)
        amount = abs(d.channel_amount or 0)
        approval = await self.core.approvals.request("ins_centre_reversal", d.id, amount, applicant=actor,
                                                     reason=reason, payload={"setl_id": d.txn_key})
        await self._history(d.id, "reversal_requested", actor, {"approval_id": approval.id, "reason": reason})
        return {"difference": await self.core.recon.diff(d.id), "approval_id": approval.id}

    async def _on_reversal_decision(self, approval: Approval, approved: bool, actor: str) -> None:
        d = await self.core.recon._diff_row(approval.target_id)
        if not approved:
            await self._history(d.id, "reversal_rejected" if approval.status == "REJECTED" else "reversal_withdrawn",
                                actor, {"approval_id": approval.id, "comment": approval.comment})
            return
        centre = (d.channel or "").removeprefix("insurance:")
        adapter = await self.core.insurance_centres.adapter(centre)
        psn_no, insutype = (d.order_ref or "|").split("|")[:2]
        admdvs = getattr(getattr(adapter, "config", None), "mdtrtarea_admvs", "")
        ref = SettlementRef(setl_id=d.txn_key, visit=VisitRef(psn_no=psn_no, insuplc_admdvs=admdvs,
                                                               mdtrt_id=d.his_serial or "", insutype=insutype or None))
        try:
            await self.core.insurance_centres.call(centre, "reverse_outpatient_settlement",
                                                   adapter.reverse_outpatient_settlement(ref), request=ref)
        except YinyiError as exc:
            await self._history(d.id, "reversal_failed", actor, {"error": exc.code, "detail": str(exc)})
            raise
        now = utcnow()

        def tx(conn: Connection) -> None:
            conn.execute(update(_D).where(_D.c.id == d.id, _D.c.status == "OPEN").values(
                status="RESOLVED", resolution="reversed", resolved_by=actor, updated_at=now,
                note="中心单边结算已冲正 (reversed at the centre after approval)"))
            conn.execute(insert(CaseEvent).values(case_id=d.id, action="reversed", actor=actor,
                                                  detail={"approval_id": approval.id}, created_at=now))

        await self.core.writer.run(tx)
        await self.core.ledger.audit(actor, "recon.insurance.reversed", d.id, {"setl_id": d.txn_key,
                                                                               "centre": centre})

    async def _history(self, diff_id: str, action: str, actor: str, detail: dict[str, Any]) -> None:
        await self.core.writer.run(lambda c: c.execute(insert(CaseEvent).values(
            case_id=diff_id, action=action, actor=actor, detail=detail, created_at=utcnow())))

