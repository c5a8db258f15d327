"""The UnionPay simulator's in-memory truth: transactions, their state machine, settlement.

Nothing here speaks HTTP: ``sim_gateway`` translates the wire to these calls and
``sim_control`` exposes them to the tester. A consume, refund or undo is *accepted*
(the answer ``00``) and completes later (success or a failure code), as ACP does;
every completion sends a signed notify to the transaction's ``backUrl``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from . import crypto
from .bill import SettlementRow, build_zip, encode_file_content, file_name
from .sim_model import MAGIC, OUTCOMES, AcpError, Script, SimMerchant, SimTxn, digits, masked_card
from .sim_notify import Notifier
from .wire import (
    CST,
    ENCODING,
    QR_NO_RE,
    SIGN_METHOD_RSA,
    TXN_CONSUME,
    TXN_REFUND,
    TXN_UNDO,
    VERSION,
    last_date_with_mmdd,
    parse_txn_time,
    resp_message,
    settle_date_of,
    valid_order_id,
)

PASSWORD_LIMIT = 100_000  # fen: above 1000 yuan the patient confirms with the password
REFUND_RESULTS = ("00", "01", "60", "63")


def _require(p: Mapping[str, str], *names: str) -> None:
    missing = [n for n in names if not p.get(n)]
    if missing:
        raise AcpError("13", f"报文交易要素缺失[{','.join(missing)}]")


def _amount(p: Mapping[str, str]) -> int:
    text = p.get("txnAmt", "")
    if not text.isdigit() or int(text) <= 0 or len(text) > 12:
        raise AcpError("10", "报文格式错误[txnAmt]")
    return int(text)


class UnionPaySimulator:
    def __init__(self, merchants: list[SimMerchant]) -> None:
        self.merchants = {m.mer_id: m for m in merchants}
        self.by_cert = {m.cert_id: m for m in merchants}
        # UnionPay's own signing key and certificate (one for every merchant, as in production)
        self.signing_key = crypto.generate_private_key()
        self.signing_cert_id = crypto.new_cert_id()
        cert = crypto.build_certificate(self.signing_key, "中国银联股份有限公司", int(self.signing_cert_id))
        self.cert_pem = crypto.certificate_pem(cert)
        self.public_key_pem = crypto.public_key_pem(self.signing_key)
        self.base_url = ""
        self.txns: dict[tuple[str, str, str], SimTxn] = {}
        self.by_query_id: dict[str, SimTxn] = {}
        self.scripts: list[Script] = []
        self.notifier = Notifier()
        self.clock_offset = dt.timedelta(0)
        # tunables (control surface: /_sim/settings)
        self.consume_settle_seconds = 0.0
        self.refund_settle_seconds = 1.0
        self.undo_settle_seconds = 0.0
        self.password_timeout_seconds = 60.0
        self.fee_rate_bp = 60  # 0.60 %
        self.settle_cutoff_hour = 23
        self.bill_summary = True
        self.next_refund_result: list[str] = []
        self.bill_unavailable: list[str] = []  # MMDD settlement days answered 98

    # --- basics -----------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(CST).replace(microsecond=0) + self.clock_offset

    def settle_day(self, moment: dt.datetime | None = None) -> dt.date:
        return settle_date_of(moment or self.now(), self.settle_cutoff_hour)

    @property
    def default_merchant(self) -> SimMerchant:
        return next(iter(self.merchants.values()))

    def reset(self) -> None:
        self.notifier.deliveries.clear()
        self.txns.clear()
        self.by_query_id.clear()
        self.scripts.clear()
        self.next_refund_result.clear()
        self.bill_unavailable.clear()
        self.clock_offset = dt.timedelta(0)

    def sign(self, fields: Mapping[str, str]) -> dict[str, str]:
        """An answer or notify: common fields + ``fields``, with signPubKeyCert, signed."""
        full = {"version": VERSION, "encoding": ENCODING, "signMethod": SIGN_METHOD_RSA, "accessType": "0",
                **fields, "signPubKeyCert": self.cert_pem}
        return crypto.signed(full, self.signing_key)

    def fee(self, amount: int) -> int:
        return (amount * self.fee_rate_bp + 5000) // 10000

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        try:
            asyncio.get_running_loop().call_later(max(delay, 0.0), fn, *args)
        except RuntimeError:
            pass  # no loop: settled lazily on the next read

    # --- lookups ----------------------------------------------------------------------
    def all_txns(self) -> list[SimTxn]:
        return [self.settle(t) for t in self.txns.values()]

    def lookup(self, order_id: str, mer_id: str | None = None, kind: str | None = None) -> SimTxn:
        """Find a transaction by order number alone (control surface); the latest wins."""
        hits = [t for t in self.txns.values() if t.order_id == order_id and mer_id in (None, t.mer_id)
                and kind in (None, t.kind)]
        if not hits:
            raise AcpError("34")
        return self.settle(hits[-1])

    def _new(self, m: SimMerchant, p: Mapping[str, str], txn_type: str, amount: int) -> SimTxn:
        order_id, txn_time = p.get("orderId", ""), p.get("txnTime", "")
        if not valid_order_id(order_id):
            raise AcpError("10", "报文格式错误[orderId]")
        try:
            parse_txn_time(txn_time)
        except ValueError:
            raise AcpError("10", "报文格式错误[txnTime]") from None
        if p.get("currencyCode", "156") != "156":
            raise AcpError("10", "报文格式错误[currencyCode]")
        if not p.get("backUrl", "").startswith(("http://", "https://")):
            raise AcpError("10", "报文格式错误[backUrl]")
        if (m.mer_id, order_id, txn_time) in self.txns:
            raise AcpError("12")
        query_id = self.now().strftime("%m%d%H%M%S") + digits(11)
        return SimTxn(mer_id=m.mer_id, order_id=order_id, txn_time=txn_time, txn_type=txn_type,
                      txn_sub_type=p.get("txnSubType", ""), biz_type=p.get("bizType", ""), amount=amount,
                      accepted_at=self.now(), back_url=p["backUrl"], req_reserved=p.get("reqReserved", ""),
                      term_id=p.get("termId", ""), query_id=query_id)

    def _record(self, txn: SimTxn) -> SimTxn:
        self.txns[(txn.mer_id, txn.order_id, txn.txn_time)] = txn
        self.by_query_id[txn.query_id] = txn
        return txn

    # --- state machine ------------------------------------------------------------------
    def _pend(self, txn: SimTxn, to: str, after: float) -> None:
        if after <= 0:
            self.complete(txn, to)
            return
        txn.pending_to, txn.pending_at = to, time.monotonic() + after
        self._later(after + 0.01, self.settle, txn)

    def settle(self, txn: SimTxn) -> SimTxn:
        """Apply a due completion (called lazily on every read and by a timer)."""
        if txn.state == "PROCESSING" and txn.pending_to and time.monotonic() >= txn.pending_at:
            self.complete(txn, txn.pending_to)
        return txn

    def complete(self, txn: SimTxn, code: str, message: str | None = None) -> SimTxn:
        """Finish a processing transaction with ``code`` (00 = success) and notify."""
        if txn.state != "PROCESSING":
            raise AcpError("35", f"交易状态为 {txn.state}")
        ok = code == "00"
        txn.state, txn.result_code = ("SUCCESS" if ok else "FAILED"), code
        txn.result_msg = message or resp_message(code)
        txn.pending_to, txn.completed_at = "", self.now()
        orig = self.by_query_id.get(txn.orig_qry_id) if txn.orig_qry_id else None
        if ok:
            txn.settle_date = self.settle_day(txn.completed_at)
            txn.fee = self.fee(txn.amount)
        elif txn.txn_type == TXN_REFUND and orig is not None:
            orig.refunded -= txn.amount
        elif txn.txn_type == TXN_UNDO and orig is not None:
            orig.undo_order = ""
        self.notify(txn)
        return txn

    def notify(self, txn: SimTxn) -> None:
        msg = txn.result_msg or resp_message(txn.result_code)
        params = self.sign({**txn.fields(), "respCode": txn.result_code,
                            "respMsg": msg + ("[0000000]" if txn.result_code == "00" else "")})
        if self.notifier.send(txn.back_url, params, txn.kind) is not None:
            txn.notifies += 1

    # --- transactions -----------------------------------------------------------------
    def pick_script(self, qr_no: str, amount: int) -> Script:
        for i, s in enumerate(self.scripts):
            if s.auth_code in (None, qr_no):
                s.times -= 1
                if s.times <= 0:
                    del self.scripts[i]
                return s
        magic = MAGIC.get(qr_no[-4:])
        if magic is not None:
            return magic
        if amount > PASSWORD_LIMIT:
            return Script("PROCESSING", then="success", after_seconds=5)
        return Script("SUCCESS")

    def consume(self, m: SimMerchant, p: Mapping[str, str]) -> SimTxn:
        _require(p, "orderId", "txnTime", "txnAmt", "currencyCode", "qrNo", "backUrl")
        txn = self._new(m, p, TXN_CONSUME, _amount(p))
        qr_no = p["qrNo"]
        if not QR_NO_RE.fullmatch(qr_no):
            raise AcpError("10", "报文格式错误[qrNo]")
        txn.qr_no, txn.acc_no = qr_no, masked_card(qr_no)
        script = self.pick_script(qr_no, txn.amount)
        if script.outcome in ("REFUSE", "BUSY"):
            raise AcpError(script.code or ("06" if script.outcome == "BUSY" else "30"))
        if script.outcome == "TIMEOUT":
            if script.charged:
                self.complete(self._record(txn), "00")
            raise AcpError("03")
        self._record(txn)
        if script.outcome == "SUCCESS":
            self._pend(txn, "00", self.consume_settle_seconds)
        elif script.outcome == "DECLINE":
            self._pend(txn, script.code or "01", self.consume_settle_seconds)
        elif script.then == "hang":
            self._pend(txn, "69", self.password_timeout_seconds)
        else:
            self._pend(txn, "00" if script.then == "success" else (script.code or "69"), script.after_seconds)
        return txn

    def _original(self, m: SimMerchant, p: Mapping[str, str]) -> SimTxn:
        orig = self.by_query_id.get(p.get("origQryId", ""))
        if orig is None or orig.mer_id != m.mer_id or orig.txn_type != TXN_CONSUME:
            raise AcpError("35")
        self.settle(orig)
        if orig.state != "SUCCESS":
            raise AcpError("35")
        return orig

    def _child(self, txn: SimTxn, orig: SimTxn) -> SimTxn:
        txn.orig_qry_id, txn.orig_order_id, txn.acc_no = orig.query_id, orig.order_id, orig.acc_no
        txn.orig_trace_no, txn.orig_trace_time = orig.trace_no, orig.moment.strftime("%m%d%H%M%S")
        return self._record(txn)

    def undo(self, m: SimMerchant, p: Mapping[str, str]) -> SimTxn:
        _require(p, "orderId", "txnTime", "txnAmt", "origQryId", "backUrl")
        txn = self._new(m, p, TXN_UNDO, _amount(p))
        orig = self._original(m, p)
        if orig.undo_order or orig.refunded > 0:
            raise AcpError("45")
        if orig.settle_date != self.settle_day():
            raise AcpError("35", "原交易不存在或状态不正确[撤销仅限当日]")
        if txn.amount != orig.amount:
            raise AcpError("36")
        self._child(txn, orig)
        orig.undo_order = txn.order_id
        self._pend(txn, "00", self.undo_settle_seconds)
        return txn

    def refund(self, m: SimMerchant, p: Mapping[str, str]) -> SimTxn:
        _require(p, "orderId", "txnTime", "txnAmt", "origQryId", "backUrl")
        txn = self._new(m, p, TXN_REFUND, _amount(p))
        orig = self._original(m, p)
        left = orig.amount - orig.refunded
        if orig.undo_order or left <= 0:
            raise AcpError("45")
        if txn.amount > left:
            raise AcpError("36")
        self._child(txn, orig)
        orig.refunded += txn.amount
        orig.refunds.append(txn.order_id)
        result = self.next_refund_result.pop(0) if self.next_refund_result else "00"
        self._pend(txn, result, self.refund_settle_seconds)
        return txn

    def query(self, m: SimMerchant, p: Mapping[str, str]) -> SimTxn:
        _require(p, "orderId", "txnTime")
        txn = self.txns.get((m.mer_id, p["orderId"], p["txnTime"]))
        if txn is None:
            raise AcpError("34")
        return self.settle(txn)

    def confirm(self, txn: SimTxn) -> SimTxn:
        """The patient confirms a processing consume (control surface)."""
        self.settle(txn)
        if txn.txn_type != TXN_CONSUME or txn.state != "PROCESSING":
            raise AcpError("35", f"交易状态为 {txn.state}，不能支付")
        return self.complete(txn, "00")

    def fail(self, txn: SimTxn, code: str = "69") -> SimTxn:
        self.settle(txn)
        if txn.state != "PROCESSING":
            raise AcpError("35", f"交易状态为 {txn.state}")
        return self.complete(txn, code)

    # --- settlement -------------------------------------------------------------------
    def bill_rows(self, mer_id: str, day: dt.date) -> list[SettlementRow]:
        rows = []
        for t in sorted(self.all_txns(), key=lambda t: (t.moment, t.order_id)):
            if t.mer_id != mer_id or t.state != "SUCCESS" or t.settle_date != day:
                continue
            sign = 1 if t.txn_type == TXN_CONSUME else -1
            rows.append(SettlementRow(
                txn_type=t.txn_type, txn_sub_type=t.txn_sub_type, biz_type=t.biz_type, trace_no=t.trace_no,
                trace_time=t.moment, query_id=t.query_id, order_id=t.order_id, amount=t.amount,
                settle=sign * t.amount, fee=sign * t.fee, mer_id=t.mer_id, acc_no=t.acc_no,
                orig_qry_id=t.orig_qry_id, orig_order_id=t.orig_order_id, orig_trace_no=t.orig_trace_no,
                orig_trace_time=t.orig_trace_time, term_id=t.term_id))
        return rows

    def bill_day(self, settle_date: str) -> dt.date:
        try:
            return last_date_with_mmdd(settle_date, self.settle_day())
        except ValueError:
            raise AcpError("10", "报文格式错误[settleDate]") from None

    def file_transfer(self, m: SimMerchant, p: Mapping[str, str]) -> dict[str, str]:
        _require(p, "settleDate", "fileType", "txnTime")
        if p["fileType"] != "00":
            raise AcpError("10", "报文格式错误[fileType]")
        day = self.bill_day(p["settleDate"])
        if p["settleDate"] in self.bill_unavailable:
            raise AcpError("98")
        data = build_zip(m.mer_id, day, self.bill_rows(m.mer_id, day), summary=self.bill_summary)
        return {"settleDate": p["settleDate"], "fileType": "00", "fileName": file_name(m.mer_id, day),
                "fileContent": encode_file_content(data)}

    def bill_truth(self, mer_id: str, day: dt.date) -> dict[str, Any]:
        rows = self.bill_rows(mer_id, day)
        return {"settle_date": day.isoformat(), "count": len(rows),
                "paid": sum(r.settle for r in rows if r.settle > 0),
                "refunded": -sum(r.settle for r in rows if r.settle < 0),
                "fee": sum(r.fee for r in rows), "orders": [r.order_id for r in rows]}

    # --- scripts ----------------------------------------------------------------------
    def add_script(self, spec: Mapping[str, Any]) -> Script:
        outcome = str(spec.get("outcome", "SUCCESS")).upper()
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        then = str(spec.get("then", "success")).lower()
        if then not in ("success", "fail", "hang"):
            raise ValueError("then must be success, fail or hang")
        code = str(spec.get("code") or "")
        if code and (len(code) != 2 or not code.isdigit() or code == "00"):
            raise ValueError("code must be a two-digit failure respCode")
        auth = spec.get("auth_code")
        script = Script(outcome=outcome, code=code, then=then, after_seconds=float(spec.get("after_seconds", 5.0)),
                        charged=bool(spec.get("charged", False)), auth_code=str(auth) if auth else None,
                        times=max(1, int(spec.get("times", 1))))
        self.scripts.append(script)
        self.scripts.sort(key=lambda s: s.auth_code is None)  # specific codes first
        return script
