"""Fee lines uploaded to the insurance centre (费用明细) and the discharge fee list (出院费用清单).

Every successful 2204/2301 upload is kept with the centre's verdict per line (self-pay
ratio, wholly self-paid, over the price limit, within scope); revocations (2205/2302)
mark lines revoked, never delete them. Kiosks print the discharge fee list from
``fee_list``: the lines by charge category, their totals, and the visit's settlement
by bucket where one exists.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from ..db.models import InsuranceFeeLine, InsuranceSettlement, utcnow
from ..money import fen_to_yuan

if TYPE_CHECKING:
    from ..core import Core
    from ..insurance import FeeUploadResult
    from .insurance_schemas import FeesIn, RevokeFeesIn

_F = InsuranceFeeLine.__table__
# 医疗收费项目类别 (med_chrgitm_type) as printed on fee lists.
CATEGORY_ZH = {"01": "床位费", "02": "诊察费", "03": "检查费", "04": "化验费", "05": "治疗费", "06": "手术费",
               "07": "护理费", "08": "卫生材料费", "09": "西药费", "10": "中药饮片费", "11": "中成药费",
               "12": "一般诊疗费", "13": "挂号费", "14": "其他费"}
LEVEL_ZH = {"01": "甲类", "02": "乙类", "03": "丙类(自费)"}


class InsuranceFees:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def record_upload(self, centre_id: str, body: FeesIn, result: FeeUploadResult, *, inpatient: bool) -> None:
        verdicts = {r.feedetl_sn: r for r in result.lines}
        now = utcnow()
        rows = []
        for line in body.lines:
            v = verdicts.get(line.feedetl_sn)
            rows.append({
                "centre_id": centre_id, "mdtrt_id": body.visit.mdtrt_id, "psn_no": body.visit.psn_no,
                "kind": "inpatient" if inpatient else "outpatient", "feedetl_sn": line.feedetl_sn,
                "chrg_bchno": line.chrg_bchno, "fee_time": line.fee_time, "med_list_codg": line.med_list_codg,
                "medins_list_codg": line.medins_list_codg,
                "item_name": str(line.extra.get("name") or line.extra.get("item_name") or "")[:128] or None,
                "quantity": str(line.quantity), "unit_price": str(line.unit_price), "amount": line.amount,
                "selfpay_prop": str(v.selfpay_prop) if v else "0", "fulamt_ownpay": v.fulamt_ownpay if v else 0,
                "overlmt": v.overlmt if v else 0, "preselfpay": v.preselfpay if v else 0,
                "inscp_scp": v.inscp_scp if v else 0, "chrgitm_lv": v.chrgitm_lv if v else None,
                "med_chrgitm_type": v.med_chrgitm_type if v else None, "status": "uploaded",
                "msgid": result.msgid, "uploaded_at": now, "updated_at": now})

        def tx(conn: Connection) -> None:
            # A line uploaded again (after a revoke, or a retried upload) replaces its earlier copy.
            for row in rows:
                conn.execute(delete(_F).where(_F.c.centre_id == centre_id, _F.c.mdtrt_id == row["mdtrt_id"],
                                              _F.c.feedetl_sn == row["feedetl_sn"]))
            conn.execute(insert(_F), rows)

        await self.core.writer.run(tx)

    async def record_revoke(self, centre_id: str, body: RevokeFeesIn, *, inpatient: bool) -> None:
        cond = [_F.c.centre_id == centre_id, _F.c.mdtrt_id == body.visit.mdtrt_id, _F.c.status == "uploaded"]
        if body.batch != "0000":
            cond.append(_F.c.feedetl_sn == body.batch if inpatient else _F.c.chrg_bchno == body.batch)
        await self.core.writer.run(lambda conn: conn.execute(
            update(_F).where(and_(*cond)).values(status="revoked", updated_at=utcnow())))

    async def fee_list(self, mdtrt_id: str, centre_id: str | None = None) -> dict[str, Any]:
        """出院费用清单: what a kiosk prints for a visit."""
        from .insurance_schemas import receipt_out

        q = select(InsuranceFeeLine).where(InsuranceFeeLine.mdtrt_id == mdtrt_id,
                                           InsuranceFeeLine.status == "uploaded")
        if centre_id:
            q = q.where(InsuranceFeeLine.centre_id == centre_id)
        async with self.core.rsm() as s:
            lines = (await s.execute(q.order_by(InsuranceFeeLine.fee_time, InsuranceFeeLine.feedetl_sn))).scalars().all()
            settled = (await s.execute(select(InsuranceSettlement).where(
                InsuranceSettlement.mdtrt_id == mdtrt_id, InsuranceSettlement.status == "COMPLETED")
                .order_by(InsuranceSettlement.created_at.desc()).limit(1))).scalar()
        by_cat: dict[str, int] = defaultdict(int)
        items = []
        for x in lines:
            by_cat[x.med_chrgitm_type or "14"] += x.amount
            items.append({"feedetl_sn": x.feedetl_sn, "fee_time": x.fee_time.isoformat(), "code": x.medins_list_codg,
                          "national_code": x.med_list_codg, "name": x.item_name, "quantity": x.quantity,
                          "unit_price": x.unit_price, "amount": x.amount, "amount_yuan": fen_to_yuan(x.amount),
                          "category": x.med_chrgitm_type, "category_zh": CATEGORY_ZH.get(x.med_chrgitm_type or "", "其他费"),
                          "level": x.chrgitm_lv, "level_zh": LEVEL_ZH.get(x.chrgitm_lv or ""),
                          "selfpay_prop": x.selfpay_prop, "wholly_self_paid": x.fulamt_ownpay,
                          "over_limit": x.overlmt, "self_paid_first": x.preselfpay, "in_scope": x.inscp_scp})

        def total(key: str) -> dict[str, Any]:
            fen = sum(getattr(x, key) for x in lines)
            return {"amount": fen, "amount_yuan": fen_to_yuan(fen)}

        payment = await self.core.ledger.get_payment(settled.payment_id) if settled and settled.payment_id else None
        return {"mdtrt_id": mdtrt_id, "psn_no": lines[0].psn_no if lines else None,
                "kind": lines[0].kind if lines else None, "items": items,
                "categories": [{"category": k, "category_zh": CATEGORY_ZH.get(k, "其他费"), "amount": v,
                                "amount_yuan": fen_to_yuan(v)} for k, v in sorted(by_cat.items())],
                "totals": {"total": total("amount"), "wholly_self_paid": total("fulamt_ownpay"),
                           "over_limit": total("overlmt"), "self_paid_first": total("preselfpay"),
                           "in_scope": total("inscp_scp")},
                "settlement": receipt_out(settled, payment, self.core.vault) if settled else None}
