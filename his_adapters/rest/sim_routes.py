"""The REST simulator's operations, in front of the shared :class:`SimHospital`.

Each operation takes its fault (if one is planned) before acting, or after acting
when the fault is an ``after`` one, so the hospital has recorded what the caller
will never hear about.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..simhis.faults import Fault, drop_connection, hold
from ..simhis.model import Charge, Record, SimHisRefusal, SimHospital
from . import sim_wire as w

Action = Callable[[dict[str, Any]], Awaitable[web.Response]]

PATHS = {"pending": "/hisapi/v1/fee/pending", "write_back": "/hisapi/v1/fee/confirm",
         "write_back_query": "/hisapi/v1/fee/confirmQuery", "refund_write_back": "/hisapi/v1/fee/refund",
         "bill": "/hisapi/v1/bill/daily", "insurance_write_back": "/hisapi/v1/insurance/settle",
         "insurance_reversal_write_back": "/hisapi/v1/insurance/settle/cancel"}
# 医保结算回写 fundDetail keys → the core's sub-fund names
FUND_KEYS = {"hifpPay": "hifp_pay", "cvlservPay": "cvlserv_pay", "hifesPay": "hifes_pay", "hifmiPay": "hifmi_pay",
             "hifobPay": "hifob_pay", "mafPay": "maf_pay", "othPay": "oth_pay"}
MALFORMED = '{"resultCode":"0","resultMsg":"成功","data":{"receiptNo":"SF2026'


async def suffer(request: web.Request, fault: Fault) -> web.Response:
    """Turn a planned fault into what the caller sees."""
    if fault.kind == "refuse":
        return w.envelope(*w.SYSTEM_REFUSED)
    if fault.kind == "unknown_status":
        return w.envelope(*w.PROCESSING)
    if fault.kind == "error":
        return web.Response(status=500, text="<html><body><h1>500 Internal Server Error</h1></body></html>",
                            content_type="text/html")
    if fault.kind == "malformed":
        return web.Response(text=MALFORMED, content_type="application/json", charset="utf-8")
    if fault.kind == "timeout":
        await hold()
    drop_connection(request.transport)  # down, or a timeout that outlived its caller's patience
    return web.Response(status=500)  # never reaches the caller


def _charge(charge: Charge) -> dict[str, Any]:
    return {"feeNo": charge.charge_id, "bizType": w.BIZ_TYPES[charge.bill_type], "visitNo": charge.visit_no,
            "deptName": charge.department, "doctorName": charge.doctor, "totalAmount": w.yuan(charge.amount),
            "billTime": w.local_time(charge.created_at),
            "items": [{"itemName": i.name, "itemCode": i.code, "quantity": i.quantity, "amount": w.yuan(i.amount)}
                      for i in charge.items]}


def _detail(record: Record) -> dict[str, Any]:
    signed = record.amount if record.kind == "payment" else -record.amount
    return {"hisSerialNo": record.his_serial, "orderNo": record.payment_id, "tradeNo": record.channel_trade_no,
            "refundNo": record.refund_id, "tradeType": "1" if record.kind == "payment" else "2",
            "payChannel": record.channel, "amount": w.yuan(signed), "patientId": record.patient_id,
            "patientName": record.patient_name, "visitNo": record.visit_no, "deptName": record.department,
            "operCode": record.operator, "feeNos": ",".join(record.charge_ids),
            "tradeTime": w.local_time(record.occurred_at), "status": "1" if record.status == "normal" else "2"}


class RestHisRoutes:
    def __init__(self, hospital: SimHospital, apps: dict[str, str]) -> None:
        self.hospital = hospital
        self.apps = apps  # app id → secret

    def add_to(self, app: web.Application) -> None:
        for op, action in (("pending", self.pending), ("write_back", self.confirm),
                           ("write_back_query", self.confirm_query), ("refund_write_back", self.refund),
                           ("bill", self.bill), ("insurance_write_back", self.insurance_settle),
                           ("insurance_reversal_write_back", self.insurance_cancel)):
            app.router.add_post(PATHS[op], self._endpoint(op, action))
        app.router.add_get(PATHS["bill"], self._endpoint("bill", self.bill))

    def _endpoint(self, op: str, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            fault = self.hospital.faults.take(op)
            if fault is not None and not fault.after:
                return await suffer(request, fault)
            try:
                params, headers = await w.read_params(request)
                w.verify(params, headers, self.apps, dt.datetime.now(dt.UTC))
                answer = await action(params)
            except w.WireError as exc:
                answer = w.envelope(exc.code, exc.message)
            except SimHisRefusal as exc:
                answer = w.envelope(w.CODES.get(exc.code, "1999"), exc.message)
            if fault is not None:
                return await suffer(request, fault)
            return answer

        return handle

    # --- operations -------------------------------------------------------------------
    async def pending(self, p: dict[str, Any]) -> web.Response:
        ids = {"card_no": p.get("cardNo"), "id_no": p.get("idCardNo"), "visit_no": p.get("visitNo"),
               "patient_id": p.get("patientId")}
        if not any(ids.values()):
            raise w.WireError(w.BAD_PARAM, "cardNo、idCardNo、visitNo、patientId至少填写一项")
        patient = self.hospital.find_patient(**{k: str(v) for k, v in ids.items() if v})
        if patient is None:
            raise SimHisRefusal("PATIENT_NOT_FOUND", "患者信息不存在")
        fees = [_charge(c) for c in self.hospital.pending(patient.patient_id, ids["visit_no"] or None)]
        return w.envelope(*w.OK, {"patientId": patient.patient_id, "patientName": patient.name,
                                  "cardNo": patient.card_no, "feeCount": len(fees), "feeList": fees})

    async def confirm(self, p: dict[str, Any]) -> web.Response:
        order_no = w.param(p, "orderNo")
        assert order_no is not None
        fee_nos = [f for f in (w.param(p, "feeNos") or "").split(",") if f]
        amount = w.fen_param(p, "payAmount")
        channel = w.param(p, "payChannel")
        paid_at = w.time_param(p, "payTime")
        existing = self.hospital.find_record(order_no)
        if existing is not None:  # 重复确认: the HIS says so, and names the receipt
            return w.envelope(*w.ALREADY_PAID, {"receiptNo": existing.his_serial, "orderNo": order_no})
        patient_id = w.param(p, "patientId", required=False)
        for fee_no in fee_nos:
            charge = self.hospital.charges.get(fee_no)
            if charge is not None and patient_id and charge.patient_id != patient_id:
                raise SimHisRefusal("CHARGE_NOT_FOUND", f"收费单{fee_no}不属于该患者")
        record = self.hospital.record_payment(
            payment_id=order_no, charge_ids=fee_nos, amount=amount, channel=str(channel),
            channel_trade_no=w.param(p, "tradeNo", required=False), paid_at=paid_at,
            operator=w.param(p, "operCode", required=False))
        return w.envelope(*w.OK, {"receiptNo": record.his_serial, "orderNo": order_no,
                                  "payAmount": w.yuan(record.amount), "confirmTime": w.local_time(record.occurred_at)})

    async def confirm_query(self, p: dict[str, Any]) -> web.Response:
        record = self.hospital.find_record(str(w.param(p, "orderNo")))
        if record is None:
            return w.envelope(*w.NO_RECORD)
        return w.envelope(*w.OK, {"receiptNo": record.his_serial, "orderNo": record.payment_id,
                                  "status": "1" if record.status == "normal" else "2",
                                  "payAmount": w.yuan(record.amount), "confirmTime": w.local_time(record.occurred_at)})

    async def refund(self, p: dict[str, Any]) -> web.Response:
        refund_no = str(w.param(p, "refundNo"))
        existing = self.hospital.find_refund(refund_no)
        if existing is not None:
            return w.envelope(*w.ALREADY_REFUNDED, {"refundReceiptNo": existing.his_serial, "refundNo": refund_no})
        record = self.hospital.record_refund(
            refund_id=refund_no, payment_id=str(w.param(p, "orderNo")), amount=w.fen_param(p, "refundAmount"),
            refunded_at=w.time_param(p, "refundTime"), reason=w.param(p, "refundReason", required=False))
        return w.envelope(*w.OK, {"refundReceiptNo": record.his_serial, "refundNo": refund_no,
                                  "refundAmount": w.yuan(record.amount)})

    async def insurance_settle(self, p: dict[str, Any]) -> web.Response:
        """医保结算确认: the settlement against the fees, each bucket apart (yuan on the wire)."""
        settle_no = str(w.param(p, "settleNo"))
        existing = self.hospital.find_insurance(settle_no)
        if existing is not None:
            return w.envelope(*w.ALREADY_SETTLED, {"receiptNo": existing.his_serial, "settleNo": settle_no})
        detail = p.get("fundDetail") or {}
        if not isinstance(detail, dict):
            raise w.WireError(w.BAD_PARAM, "参数fundDetail必须是对象")
        unknown = sorted(set(detail) - set(FUND_KEYS))
        if unknown:
            raise w.WireError(w.BAD_PARAM, f"不支持的基金分项{','.join(unknown)}")
        funds = {FUND_KEYS[k]: w.fen_param(detail, k) for k in detail if detail[k] not in (None, "")}
        patient_id = w.param(p, "patientId", required=False)
        fee_nos = [f for f in (w.param(p, "feeNos") or "").split(",") if f]
        for fee_no in fee_nos:
            charge = self.hospital.charges.get(fee_no)
            if charge is not None and patient_id and charge.patient_id != patient_id:
                raise SimHisRefusal("CHARGE_NOT_FOUND", f"收费单{fee_no}不属于该患者")
        cash = w.fen_param(p, "cashPay")
        entry = self.hospital.record_insurance(
            settlement_id=settle_no, charge_ids=fee_nos, setl_id=str(w.param(p, "setlId")),
            mdtrt_id=str(w.param(p, "mdtrtId")), psn_no=str(w.param(p, "psnNo")),
            insutype=str(w.param(p, "insutype")), total=w.fen_param(p, "totalAmount"),
            fund_total=w.fen_param(p, "fundAmount"), funds=funds, acct_pay=w.fen_param(p, "acctPay"),
            acct_mulaid_pay=w.fen_param(p, "acctMulaidPay"), wallet_pay=w.fen_param(p, "walletPay"),
            cash_pay=cash, hosp_part=w.fen_param(p, "hospPart"),
            cash_payment_id=w.param(p, "cashOrderNo", required=cash > 0),
            cash_channel=w.param(p, "cashChannel", required=cash > 0),
            cash_trade_no=w.param(p, "cashTradeNo", required=False), settled_at=w.time_param(p, "setlTime"),
            operator=w.param(p, "operCode", required=False))
        return w.envelope(*w.OK, {"receiptNo": entry.his_serial, "settleNo": settle_no,
                                  "cashReceiptNo": entry.cash_serial})

    async def insurance_cancel(self, p: dict[str, Any]) -> web.Response:
        """医保结算撤销: the settlement reversed at the centre, its cash part refunded."""
        settle_no = str(w.param(p, "settleNo"))
        existing = self.hospital.find_insurance(settle_no)
        if existing is not None and existing.status == "reversed":
            return w.envelope(*w.ALREADY_REVERSED, {"cancelReceiptNo": existing.reversal_serial,
                                                    "settleNo": settle_no})
        entry = self.hospital.reverse_insurance(
            settlement_id=settle_no, total=w.fen_param(p, "totalAmount"),
            rev_setl_id=w.param(p, "revSetlId", required=False), cash_refund_id=w.param(p, "refundNo", required=False),
            reversed_at=w.time_param(p, "cancelTime"), reason=w.param(p, "reason", required=False))
        return w.envelope(*w.OK, {"cancelReceiptNo": entry.reversal_serial, "settleNo": settle_no})

    async def bill(self, p: dict[str, Any]) -> web.Response:
        text = str(w.param(p, "billDate"))
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise w.WireError(w.BAD_PARAM, "billDate格式错误，应为yyyy-MM-dd") from None
        biz = str(w.param(p, "bizType"))
        if biz not in w.BILL_TYPE_OF:
            raise w.WireError(w.BAD_PARAM, f"不支持的业务类型{biz}")
        records = self.hospital.bill(day, w.BILL_TYPE_OF[biz])
        total = sum((r.amount if r.kind == "payment" else -r.amount) for r in records if r.status == "normal")
        return w.envelope(*w.OK, {"billDate": text, "bizType": biz, "totalCount": len(records),
                                  "totalAmount": w.yuan(total), "details": [_detail(r) for r in records]})
