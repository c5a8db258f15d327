"""Simulator: the trade bill lines of one merchant and day, from the in-memory truth."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .bill import TradeBillRow
from .sim_model import SimOrder

if TYPE_CHECKING:
    from .sim_core import WeChatPaySimulator


def bill_rows(sim: WeChatPaySimulator, mchid: str, sub_mchid: str, day: dt.date,
              bill_type: str = "ALL") -> list[TradeBillRow]:
    """Payments that succeeded on ``day`` and money returned on ``day`` (refunds, reversals)."""
    m = sim.merchant(mchid)
    rate = f"{sim.fee_rate_bp / 100:.2f}%"
    rows: list[TradeBillRow] = []

    def row(o: SimOrder, when: dt.datetime, state: str, **kw: Any) -> TradeBillRow:
        base: dict[str, Any] = dict(
            trade_time=when, appid=m.appid, mchid=mchid, sub_mchid=o.sub_mchid or "0",
            device_id=o.device_id, transaction_id=o.transaction_id, out_trade_no=o.out_trade_no,
            openid=o.openid, trade_type=o.trade_type, trade_state=state, bank_type=o.bank_type or "OTHERS",
            currency="CNY", settle_amount=0, coupon_amount=0, refund_id="0", out_refund_no="0",
            refund_amount=0, recharge_coupon_refund=0, refund_type="", refund_status="",
            subject=o.description, attach=o.attach, fee=0, rate=rate, order_amount=0,
            apply_refund_amount=0, rate_note="")
        return TradeBillRow(**(base | kw))

    for o in sim.orders.values():
        if o.mchid != mchid or o.sub_mchid != sub_mchid:
            continue
        if bill_type in ("ALL", "SUCCESS") and o.success_time and o.success_time.date() == day:
            rows.append(row(o, o.success_time, "SUCCESS", settle_amount=o.total,
                            order_amount=o.total, fee=sim.fee(o.total)))
        if bill_type in ("ALL", "REFUND") and o.revoked_at and o.revoked_at.date() == day:
            rows.append(row(o, o.revoked_at, "REVOKED", refund_id=o.reverse_refund_id,
                            refund_amount=o.total, apply_refund_amount=o.total, refund_type="ORIGINAL",
                            refund_status="SUCCESS", fee=-sim.fee(o.total)))
    if bill_type in ("ALL", "REFUND"):
        for r in sim.refunds.values():
            o = sim.orders.get((r.mchid, r.sub_mchid, r.out_trade_no))
            if (r.mchid, r.sub_mchid) != (mchid, sub_mchid) or o is None:
                continue
            if r.status == "SUCCESS" and r.success_time and r.success_time.date() == day:
                rows.append(row(o, r.success_time, "REFUND", refund_id=r.refund_id,
                                out_refund_no=r.out_refund_no, refund_amount=r.amount,
                                apply_refund_amount=r.amount, refund_type="ORIGINAL",
                                refund_status="SUCCESS", fee=-sim.fee(r.amount)))
    rows.sort(key=lambda r: (r.trade_time, r.out_trade_no))
    return rows
