"""The simulator's refunds and bills (a part of ``AlipaySimulator``)."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from gateway.money import fen_to_yuan

from .bill import write_bill_zip
from .sim_bill import bill_rows
from .sim_model import REFUND_ERRORS, SimError, SimOrder, SimRefund, amount_of, invalid
from .wire import format_time

if TYPE_CHECKING:
    from .sim_core import AlipaySimulator, Ctx


class RefundsAndBills:
    """Refunds (``alipay.trade.refund`` / ``…fastpay.refund.query``) and the daily bill."""

    # --- refunds ----------------------------------------------------------------------
    def refund(self: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> tuple[SimRefund, str, SimOrder]:
        """``alipay.trade.refund``: (the refund, fund_change Y/N, the trade)."""
        order = self.find(ctx, biz)
        amount = amount_of(biz.get("refund_amount"), "refund_amount")
        req_no = str(biz.get("out_request_no") or order.out_trade_no)
        key = (*ctx.key(order.out_trade_no), req_no)
        old = self.refunds.get(key)
        if old is not None:
            if old.amount != amount:
                raise SimError("ACQ.DISCORDANT_REPEAT_REQUEST")
            return old, "N", order
        if self.next_refund_errors:
            err = self.next_refund_errors.pop(0)
            raise SimError("isp.unknow-error", code="20000") if err == "20000" else SimError(err)
        if order.state == "TRADE_FINISHED":
            raise SimError("ACQ.TRADE_HAS_FINISHED")
        if order.state != "TRADE_SUCCESS":
            raise SimError("ACQ.TRADE_STATUS_ERROR")
        if amount > order.total - order.refunded:
            raise SimError("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
        r = SimRefund(app_id=order.app_id, seller_id=order.seller_id, out_trade_no=order.out_trade_no,
                      trade_no=order.trade_no, out_request_no=req_no, amount=amount, total=order.total,
                      reason=str(biz.get("refund_reason") or ""), created_at=self.now())
        self.refunds[key] = r
        order.refunded += amount
        order.refunds.append(req_no)
        if self.refund_settle_seconds <= 0:
            self.finish_refund(r)
            return r, "Y", order
        self._later(self.refund_settle_seconds, self.finish_refund, r)
        return r, "N", order

    def finish_refund(self: AlipaySimulator, r: SimRefund) -> None:
        order = self.orders.get((r.app_id, r.seller_id, r.out_trade_no))
        if r.settled_at is not None or order is None:  # settled already, or forgotten by a reset
            return
        r.settled_at = self.now()
        settled = sum(x.amount for x in self.refunds.values()
                      if (x.app_id, x.seller_id, x.out_trade_no) == (r.app_id, r.seller_id, r.out_trade_no)
                      and x.settled_at is not None)
        if settled >= order.total:
            order.state, order.closed_at = "TRADE_CLOSED", r.settled_at
        self.notify(order, refund_fee=settled, gmt_refund=r.settled_at, out_biz_no=r.out_request_no)

    def refund_answer(self: AlipaySimulator, r: SimRefund, fund_change: str, order: SimOrder) -> dict[str, Any]:
        out: dict[str, Any] = {"trade_no": order.trade_no, "out_trade_no": order.out_trade_no, **order.buyer(),
                               "fund_change": fund_change, "refund_fee": fen_to_yuan(order.refunded)}
        if r.settled_at is not None:
            out["gmt_refund_pay"] = format_time(r.settled_at)
        out["send_back_fee"] = fen_to_yuan(r.amount if fund_change == "Y" else 0)
        return out

    def refund_query(self: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
        order = self.find(ctx, biz)
        req_no = biz.get("out_request_no")
        if not req_no:
            raise invalid("out_request_no 不能为空")
        r = self.refunds.get((*ctx.key(order.out_trade_no), str(req_no)))
        options = biz.get("query_options") if isinstance(biz.get("query_options"), list) else []
        return r.as_query(options) if r is not None else {}

    # --- bill -------------------------------------------------------------------------
    def bill_zip(self: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> tuple[str, bytes]:
        """``(file name, zip bytes)`` of a daily trade bill; raises when there is none."""
        if biz.get("bill_type") not in ("trade", "signcustomer"):
            raise SimError("isv.invalid-arguments", "bill_type 取值为 trade 或 signcustomer")
        try:
            day = dt.date.fromisoformat(str(biz.get("bill_date") or ""))
        except ValueError:
            raise SimError("isv.invalid-arguments", "bill_date 格式为 yyyy-MM-dd（沙箱只提供日账单）") from None
        if day > self.now().date():
            raise SimError("isv.invalid-arguments", "账单日期不能晚于当前日期")
        rows = bill_rows(self, ctx.merchant.app_id, ctx.seller_id, day)
        if not rows:
            raise SimError("isp.bill_not_exist")
        return f"{ctx.seller_id}_{day:%Y%m%d}.csv.zip", write_bill_zip(rows, ctx.seller_id, day, self.now())

    def set_refund_errors(self: AlipaySimulator, errors: Any) -> None:
        errs = [errors] if isinstance(errors, str) else list(errors)
        bad = [e for e in errs if e not in REFUND_ERRORS]
        if bad:
            raise ValueError(f"next_refund_errors: each one of {', '.join(REFUND_ERRORS)}")
        self.next_refund_errors = errs
