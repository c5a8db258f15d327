"""Payment and refund state machines, written as data.

``PAYMENT_TRANSITIONS[a]`` is the set of states a payment may move to from ``a``.
The only code that changes a status is ``gateway.services.ledger.Ledger.transition_*``,
which checks these tables, updates the row conditionally on its current status
(so two processes racing on the same payment cannot both apply a change) and
appends the event.
"""
from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    CREATED = "CREATED"  # intent recorded, channel not yet answered
    PAYING = "PAYING"  # order at the channel, patient yet to pay or confirming
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # proven: declined, or the channel has no such order
    CLOSED = "CLOSED"  # unpaid order closed at the channel
    REVERSED = "REVERSED"  # payment-code attempt revoked at the channel
    UNKNOWN = "UNKNOWN"  # outcome not known; the resolver will find out
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"  # intent recorded / channel is processing
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


P = PaymentStatus
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.CREATED: frozenset({P.PAYING, P.SUCCEEDED, P.FAILED, P.UNKNOWN, P.CLOSED, P.REVERSED}),
    P.PAYING: frozenset({P.SUCCEEDED, P.FAILED, P.CLOSED, P.REVERSED, P.UNKNOWN}),
    P.UNKNOWN: frozenset({P.PAYING, P.SUCCEEDED, P.FAILED, P.CLOSED, P.REVERSED}),
    # A payment-code payment that succeeded can still be revoked at the channel
    # (撤销 returns the money) when the caller abandons the transaction.
    P.SUCCEEDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED, P.REVERSED}),
    P.PARTIALLY_REFUNDED: frozenset({P.PARTIALLY_REFUNDED, P.REFUNDED}),
    P.FAILED: frozenset(),
    P.CLOSED: frozenset(),
    P.REVERSED: frozenset(),
    P.REFUNDED: frozenset(),
}

R = RefundStatus
REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.PROCESSING: frozenset({R.SUCCEEDED, R.FAILED, R.UNKNOWN}),
    R.UNKNOWN: frozenset({R.PROCESSING, R.SUCCEEDED, R.FAILED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
}

# States in which the resolver still has work to do.
PAYMENT_OPEN = frozenset({P.CREATED, P.PAYING, P.UNKNOWN})
REFUND_OPEN = frozenset({R.PROCESSING, R.UNKNOWN})
# States in which money has been received (and may be refunded).
PAYMENT_PAID = frozenset({P.SUCCEEDED, P.PARTIALLY_REFUNDED})


class TransitionError(ValueError):
    pass


def check_payment(frm: PaymentStatus | str, to: PaymentStatus | str) -> None:
    if PaymentStatus(to) not in PAYMENT_TRANSITIONS[PaymentStatus(frm)]:
        raise TransitionError(f"payment may not go from {frm} to {to}")


def check_refund(frm: RefundStatus | str, to: RefundStatus | str) -> None:
    if RefundStatus(to) not in REFUND_TRANSITIONS[RefundStatus(frm)]:
        raise TransitionError(f"refund may not go from {frm} to {to}")
