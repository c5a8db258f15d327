"""The insurance settlement (医保结算) state machine, written as data.

A mixed settlement is one insurance settlement at the centre plus, when the patient
still owes a self-pay part (``psn_cash_pay``), one top-up payment (补缴) through the
ordinary payment flow. The gateway records each step before it calls out:

- ``CREATED``: intent recorded, the settle call's msgids planned and stored; the
  call to the centre (2207/2304) is in flight or about to be.
- ``SETTLE_UNKNOWN``: the settle call broke (timeout, 5xx, reset): the centre may or
  may not have settled. It is undone with 2601 by the stored msgids before anything
  else; no money is taken.
- ``TOPUP_PENDING``: settled at the centre; the cash part is being collected.
- ``REVERSING``: the settlement is being undone: the top-up failed, was abandoned or
  timed out, or the caller reversed a completed settlement. The open top-up is
  stopped, the centre reverses (2208/2305) and paid cash is refunded.
- ``COMPLETED``: settled and the cash part (if any) paid.
- ``REVERSED``: undone at the centre; any cash returned or never taken.
- ``FAILED``: the centre refused, or an unknown outcome was cancelled with 2601:
  nothing stands at the centre and no money moved. Start again with a new
  ``out_settle_no``.
"""
from __future__ import annotations

from enum import StrEnum


class SettlementStatus(StrEnum):
    CREATED = "CREATED"
    SETTLE_UNKNOWN = "SETTLE_UNKNOWN"
    TOPUP_PENDING = "TOPUP_PENDING"
    REVERSING = "REVERSING"
    COMPLETED = "COMPLETED"
    REVERSED = "REVERSED"
    FAILED = "FAILED"


S = SettlementStatus
SETTLEMENT_TRANSITIONS: dict[SettlementStatus, frozenset[SettlementStatus]] = {
    S.CREATED: frozenset({S.TOPUP_PENDING, S.COMPLETED, S.FAILED, S.SETTLE_UNKNOWN}),
    S.SETTLE_UNKNOWN: frozenset({S.FAILED}),
    S.TOPUP_PENDING: frozenset({S.COMPLETED, S.REVERSING}),
    # A caller's reversal the centre refuses returns the settlement to COMPLETED.
    S.REVERSING: frozenset({S.REVERSED, S.COMPLETED}),
    S.COMPLETED: frozenset({S.REVERSING}),
    S.REVERSED: frozenset(),
    S.FAILED: frozenset(),
}

# States the background worker drives to an end.
SETTLEMENT_OPEN = frozenset({S.CREATED, S.SETTLE_UNKNOWN, S.TOPUP_PENDING, S.REVERSING})
SETTLEMENT_FINAL = frozenset({S.COMPLETED, S.REVERSED, S.FAILED})

STATUS_ZH: dict[str, str] = {
    S.CREATED: "医保结算中", S.SETTLE_UNKNOWN: "医保结算结果未知(冲正中)", S.TOPUP_PENDING: "待补缴自付部分",
    S.REVERSING: "撤销中", S.COMPLETED: "结算完成", S.REVERSED: "已撤销", S.FAILED: "结算失败",
}

# Why a settlement was reversed or failed (reason codes, with labels for people).
REASON_ZH: dict[str, str] = {
    "topup_failed": "自付部分支付失败，医保结算已自动撤销",
    "topup_rejected": "自付部分无法发起支付，医保结算已自动撤销",
    "topup_cancelled": "调用方取消了自付部分支付，医保结算已自动撤销",
    "topup_timeout": "自付部分支付超时，医保结算已自动撤销",
    "caller_reversed": "调用方申请撤销结算，已退还自付部分并撤销医保结算",
    "centre_refused": "医保中心拒绝结算",
    "settle_unknown": "医保结算结果未知，已冲正(2601)，可重新结算",
}


class SettlementTransitionError(ValueError):
    pass


def check_settlement(frm: SettlementStatus | str, to: SettlementStatus | str) -> None:
    if SettlementStatus(to) not in SETTLEMENT_TRANSITIONS[SettlementStatus(frm)]:
        raise SettlementTransitionError(f"insurance settlement may not go from {frm} to {to}")
