"""Simulator: the detail bill lines of one seller and day, from the in-memory truth."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .bill import AlipayBillRow
from .sim_model import SimOrder

if TYPE_CHECKING:
    from .sim_core import AlipaySimulator


def bill_rows(sim: AlipaySimulator, app_id: str, seller_id: str, day: dt.date) -> list[AlipayBillRow]:
    """Payments completed on ``day`` (交易) and money returned on ``day`` (退款: refunds and cancels)."""
    rows: list[AlipayBillRow] = []

    def row(o: SimOrder, kind: str, when: dt.datetime, **kw: Any) -> AlipayBillRow:
        base: dict[str, Any] = dict(
            trade_no=o.trade_no, out_trade_no=o.out_trade_no, kind=kind, subject=o.subject,
            created_at=o.created_at, finished_at=when, store_id=o.store_id, store_name="",
            operator="", terminal_id=o.terminal_id, buyer_account=o.buyer_logon_id, order_amount=o.total,
            receipt_amount=0, red_packet=0, jifenbao=0, alipay_discount=0, merchant_discount=0,
            voucher_amount=0, voucher_name="", merchant_red_packet=0, card_amount=0, refund_request_no="",
            service_fee=0, share=0, memo="")
        return AlipayBillRow(**(base | kw))

    for o in sim.orders.values():
        if (o.app_id, o.seller_id) != (app_id, seller_id) or not o.paid_at:
            continue
        if o.paid_at.date() == day:
            rows.append(row(o, "交易", o.paid_at, receipt_amount=o.total, service_fee=-sim.fee(o.total)))
        if o.cancel_refund_at and o.cancel_refund_at.date() == day:
            rows.append(row(o, "退款", o.cancel_refund_at, receipt_amount=-o.total,
                            service_fee=sim.fee(o.total), memo="撤销"))
    for r in sim.refunds.values():
        o = sim.orders.get((r.app_id, r.seller_id, r.out_trade_no))
        if (r.app_id, r.seller_id) != (app_id, seller_id) or o is None:
            continue
        if r.settled_at and r.settled_at.date() == day:
            rows.append(row(o, "退款", r.settled_at, receipt_amount=-r.amount, refund_request_no=r.out_request_no,
                            service_fee=sim.fee(r.amount)))
    rows.sort(key=lambda r: (r.finished_at, r.out_trade_no, r.kind))
    return rows
