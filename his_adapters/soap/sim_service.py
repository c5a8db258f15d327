"""The simulated SOAP HIS's business messages: trade codes over the shared hospital.

Speaks the form many Chinese HIS web services use: a trade code and a
``<Request>`` message in, a ``<Response>`` with ``ResultCode``/``ResultContent``
out; amounts in yuan, times as China wall-clock ``yyyy-MM-dd HH:mm:ss``.

========  =================  ===========================================
TradeCode  operation          what it does
========  =================  ===========================================
1001       pending            查询待缴费 (by CardNo, IDCardNo, PatientID, VisitNo)
1002       write_back         缴费确认
1003       write_back_query   缴费结果查询
1004       refund_write_back  退费
1005       bill               对账明细 (BillDate, BillType)
1006       insurance_write_back  医保结算确认 (buckets apart, FundDetail)
1007       insurance_reversal_write_back  医保结算撤销
========  =================  ===========================================
"""
from __future__ import annotations

import datetime as dt

from lxml import etree

from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen
from his_adapters.simhis import CST, Charge, Record, SimHisRefusal, SimHospital

from .envelope import child

OPS = {"1001": "pending", "1002": "write_back", "1003": "write_back_query", "1004": "refund_write_back",
       "1005": "bill", "1006": "insurance_write_back", "1007": "insurance_reversal_write_back"}
OK, ALREADY_DONE, NO_RECORD, UNKNOWN_STATUS = "0", "1", "401", "999"
SYSTEM_REFUSED = "-1"
# the hospital's refusal reasons as this HIS numbers them
REFUSAL_CODES = {
    "INVALID_PARAMETER": "100", "PATIENT_NOT_FOUND": "101", "VISIT_NOT_FOUND": "102",
    "CHARGE_NOT_FOUND": "201", "BILL_PAID": "202", "MIXED_CHARGES": "203", "AMOUNT_MISMATCH": "204",
    "PAYMENT_NOT_FOUND": "301", "INVALID_AMOUNT": "302", "REFUND_EXCEEDS": "303",
    "RECORD_NOT_FOUND": "304", "SPLIT_MISMATCH": "205", "SETTLEMENT_NOT_FOUND": "305",
    "SYSTEM_REFUSED": SYSTEM_REFUSED,
}
# 医保结算 FundDetail elements → the core's sub-fund names
FUND_TAGS = {"HifpPay": "hifp_pay", "CvlservPay": "cvlserv_pay", "HifesPay": "hifes_pay", "HifmiPay": "hifmi_pay",
             "HifobPay": "hifob_pay", "MafPay": "maf_pay", "OthPay": "oth_pay"}
BILL_TYPE_CODES = {"outpatient_registration": "GH", "outpatient_settlement": "SF",
                   "inpatient_deposit": "YJ", "inpatient_settlement": "JS"}
PAY_MODES = ("WX", "ZFB", "YL", "SZRMB", "CASH")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class BadRequest(Exception):
    """A request this HIS cannot read: answered as a SOAP Client fault."""


def local_time(value: dt.datetime) -> str:
    return value.astimezone(CST).strftime(TIME_FORMAT)


def parse_local(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CST).astimezone(dt.UTC)
    except ValueError:
        raise SimHisRefusal("INVALID_PARAMETER", f"时间格式错误: {text}") from None


def response(code: str, message: str) -> etree._Element:
    resp = etree.Element("Response")
    _add(resp, "ResultCode", code)
    _add(resp, "ResultContent", message)
    return resp


def refusal(exc: SimHisRefusal) -> etree._Element:
    return response(REFUSAL_CODES.get(exc.code, SYSTEM_REFUSED), exc.message)


def _add(parent: etree._Element, tag: str, value: str | int | None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.text = "" if value is None else str(value)
    return el


def _field(req: etree._Element, name: str) -> str:
    el = child(req, name)
    return (el.text or "").strip() if el is not None else ""


def _amount(req: etree._Element, name: str) -> int:
    try:
        return yuan_to_fen(_field(req, name))
    except MoneyFormatError:
        raise SimHisRefusal("INVALID_PARAMETER", f"{name}金额格式错误") from None


def handle(hospital: SimHospital, op: str, req: etree._Element) -> etree._Element:
    """Carry out one request; a refusal becomes its ``<Response>``, never an exception."""
    try:
        return _HANDLERS[op](hospital, req)
    except SimHisRefusal as exc:
        return refusal(exc)


def _pending(hospital: SimHospital, req: etree._Element) -> etree._Element:
    ids = {k: _field(req, tag) or None for k, tag in
           (("card_no", "CardNo"), ("id_no", "IDCardNo"), ("patient_id", "PatientID"), ("visit_no", "VisitNo"))}
    if not any(ids.values()):
        raise SimHisRefusal("INVALID_PARAMETER", "请提供卡号、身份证号、患者ID或就诊号")
    patient = hospital.find_patient(**ids)
    if patient is None:
        raise SimHisRefusal("PATIENT_NOT_FOUND", "患者信息不存在")
    resp = response(OK, "成功")
    _add(resp, "PatientID", patient.patient_id)
    _add(resp, "PatientName", patient.name)
    orders = etree.SubElement(resp, "OrderList")
    for charge in hospital.pending(patient.patient_id, ids["visit_no"]):
        _order(orders, charge, patient.name)
    return resp


def _order(parent: etree._Element, charge: Charge, name: str) -> None:
    order = etree.SubElement(parent, "Order")
    for tag, value in (("OrderNo", charge.charge_id), ("BillType", BILL_TYPE_CODES[charge.bill_type]),
                       ("PatientID", charge.patient_id), ("PatientName", name), ("VisitNo", charge.visit_no),
                       ("DeptName", charge.department), ("DoctorName", charge.doctor),
                       ("OrderAmt", fen_to_yuan(charge.amount)), ("OrderTime", local_time(charge.created_at))):
        _add(order, tag, value)
    items = etree.SubElement(order, "ItemList")
    for it in charge.items:
        item = etree.SubElement(items, "Item")
        for tag, value in (("ItemName", it.name), ("ItemCode", it.code), ("Qty", it.quantity),
                           ("ItemAmt", fen_to_yuan(it.amount))):
            _add(item, tag, value)


def _write_back(hospital: SimHospital, req: etree._Element) -> etree._Element:
    payment_id = _field(req, "PlatformTradeNo")
    if not payment_id:
        raise SimHisRefusal("INVALID_PARAMETER", "平台流水号不能为空")
    before = hospital.find_record(payment_id)
    if before is not None:
        resp = response(ALREADY_DONE, "该笔交易已确认收费")
        _add(resp, "ReceiptNo", before.his_serial)
        return resp
    mode = _field(req, "PayMode")
    if mode not in PAY_MODES:
        raise SimHisRefusal("INVALID_PARAMETER", f"支付方式{mode}无效")
    record = hospital.record_payment(
        payment_id=payment_id, charge_ids=[c for c in _field(req, "OrderNos").split(",") if c],
        amount=_amount(req, "PayAmt"), channel=mode, channel_trade_no=_field(req, "BankTradeNo") or None,
        paid_at=parse_local(_field(req, "PayTime")), operator=_field(req, "OperCode") or None)
    resp = response(OK, "成功")
    _add(resp, "ReceiptNo", record.his_serial)
    return resp


def _write_back_query(hospital: SimHospital, req: etree._Element) -> etree._Element:
    record = hospital.find_record(_field(req, "PlatformTradeNo"))
    if record is None:
        return response(NO_RECORD, "无此交易记录")
    resp = response(OK, "成功")
    for tag, value in (("ReceiptNo", record.his_serial), ("PayAmt", fen_to_yuan(record.amount)),
                       ("PayTime", local_time(record.occurred_at)), ("Status", _status(record))):
        _add(resp, tag, value)
    return resp


def _refund(hospital: SimHospital, req: etree._Element) -> etree._Element:
    refund_id = _field(req, "RefundNo")
    if not refund_id:
        raise SimHisRefusal("INVALID_PARAMETER", "退费流水号不能为空")
    before = hospital.find_refund(refund_id)
    if before is not None:
        resp = response(ALREADY_DONE, "该笔退费已处理")
        _add(resp, "ReceiptNo", before.his_serial)
        return resp
    record = hospital.record_refund(
        refund_id=refund_id, payment_id=_field(req, "PlatformTradeNo"), amount=_amount(req, "RefundAmt"),
        refunded_at=parse_local(_field(req, "RefundTime")), reason=_field(req, "RefundReason") or None)
    resp = response(OK, "成功")
    _add(resp, "ReceiptNo", record.his_serial)
    return resp


def _status(record: Record) -> str:
    return "0" if record.status == "normal" else "1"  # 0 正常, 1 作废


def _bill(hospital: SimHospital, req: etree._Element) -> etree._Element:
    reverse = {v: k for k, v in BILL_TYPE_CODES.items()}
    bill_type = reverse.get(_field(req, "BillType"))
    if bill_type is None:
        raise SimHisRefusal("INVALID_PARAMETER", f"对账类型{_field(req, 'BillType')}无效")
    try:
        day = dt.date.fromisoformat(_field(req, "BillDate"))
    except ValueError:
        raise SimHisRefusal("INVALID_PARAMETER", "对账日期格式错误") from None
    records = hospital.bill(day, bill_type)
    net = sum(r.amount if r.kind == "payment" else -r.amount for r in records if r.status == "normal")
    resp = response(OK, "成功")
    _add(resp, "TotalCount", len(records))
    _add(resp, "TotalAmt", fen_to_yuan(net))
    details = etree.SubElement(resp, "DetailList")
    for r in records:
        d = etree.SubElement(details, "Detail")
        for tag, value in (("SerialNo", r.his_serial), ("TradeType", "1" if r.kind == "payment" else "2"),
                           ("BillType", BILL_TYPE_CODES[r.bill_type]), ("PlatformTradeNo", r.payment_id),
                           ("RefundNo", r.refund_id), ("BankTradeNo", r.channel_trade_no), ("PayMode", r.channel),
                           ("Amt", fen_to_yuan(r.amount)), ("PatientID", r.patient_id),
                           ("PatientName", r.patient_name), ("VisitNo", r.visit_no), ("DeptName", r.department),
                           ("OperCode", r.operator), ("TradeTime", local_time(r.occurred_at)),
                           ("Status", _status(r))):
            _add(d, tag, value)
    return resp


def _insurance(hospital: SimHospital, req: etree._Element) -> etree._Element:
    settlement_id = _field(req, "SettleNo")
    if not settlement_id:
        raise SimHisRefusal("INVALID_PARAMETER", "医保结算流水号不能为空")
    before = hospital.find_insurance(settlement_id)
    if before is not None:
        resp = response(ALREADY_DONE, "该医保结算已登记")
        _add(resp, "ReceiptNo", before.his_serial)
        return resp
    funds: dict[str, int] = {}
    detail = child(req, "FundDetail")
    for el in (detail if detail is not None else []):
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        if tag not in FUND_TAGS:
            raise SimHisRefusal("INVALID_PARAMETER", f"不支持的基金分项{tag}")
        if (el.text or "").strip():
            funds[FUND_TAGS[tag]] = _amount(detail, tag)
    cash = _amount(req, "CashAmt")
    mode = _field(req, "CashPayMode") or None
    if cash > 0 and mode not in PAY_MODES:
        raise SimHisRefusal("INVALID_PARAMETER", f"支付方式{mode}无效")
    entry = hospital.record_insurance(
        settlement_id=settlement_id, charge_ids=[c for c in _field(req, "OrderNos").split(",") if c],
        setl_id=_field(req, "SetlID"), mdtrt_id=_field(req, "MdtrtID"), psn_no=_field(req, "PsnNo"),
        insutype=_field(req, "Insutype"), total=_amount(req, "TotalAmt"), fund_total=_amount(req, "FundAmt"),
        funds=funds, acct_pay=_amount(req, "AcctAmt"), acct_mulaid_pay=_amount(req, "MulaidAmt"),
        wallet_pay=_amount(req, "WalletAmt"), cash_pay=cash, hosp_part=_amount(req, "HospAmt"),
        cash_payment_id=_field(req, "PlatformTradeNo") or None, cash_channel=mode,
        cash_trade_no=_field(req, "BankTradeNo") or None, settled_at=parse_local(_field(req, "SetlTime")),
        operator=_field(req, "OperCode") or None)
    resp = response(OK, "成功")
    _add(resp, "ReceiptNo", entry.his_serial)
    return resp


def _insurance_reversal(hospital: SimHospital, req: etree._Element) -> etree._Element:
    settlement_id = _field(req, "SettleNo")
    if not settlement_id:
        raise SimHisRefusal("INVALID_PARAMETER", "医保结算流水号不能为空")
    before = hospital.find_insurance(settlement_id)
    if before is not None and before.status == "reversed":
        resp = response(ALREADY_DONE, "该医保结算已撤销")
        _add(resp, "ReceiptNo", before.reversal_serial)
        return resp
    entry = hospital.reverse_insurance(
        settlement_id=settlement_id, total=_amount(req, "TotalAmt"), rev_setl_id=_field(req, "RevSetlID") or None,
        cash_refund_id=_field(req, "RefundNo") or None, reversed_at=parse_local(_field(req, "CancelTime")),
        reason=_field(req, "Reason") or None)
    resp = response(OK, "成功")
    _add(resp, "ReceiptNo", entry.reversal_serial)
    return resp


_HANDLERS = {"pending": _pending, "write_back": _write_back, "write_back_query": _write_back_query,
             "refund_write_back": _refund, "bill": _bill, "insurance_write_back": _insurance,
             "insurance_reversal_write_back": _insurance_reversal}
