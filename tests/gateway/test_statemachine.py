"""Every allowed and every forbidden transition, checked against the tables."""
import itertools

import pytest

from gateway.statemachine import (PAYMENT_OPEN, PAYMENT_TRANSITIONS, REFUND_TRANSITIONS, PaymentStatus,
                                  RefundStatus, TransitionError, check_payment, check_refund)

P, R = PaymentStatus, RefundStatus

EXPECTED_PAYMENT = {
    (P.CREATED, P.PAYING), (P.CREATED, P.SUCCEEDED), (P.CREATED, P.FAILED), (P.CREATED, P.UNKNOWN),
    (P.CREATED, P.CLOSED), (P.CREATED, P.REVERSED),
    (P.PAYING, P.SUCCEEDED), (P.PAYING, P.FAILED), (P.PAYING, P.CLOSED), (P.PAYING, P.REVERSED),
    (P.PAYING, P.UNKNOWN),
    (P.UNKNOWN, P.PAYING), (P.UNKNOWN, P.SUCCEEDED), (P.UNKNOWN, P.FAILED), (P.UNKNOWN, P.CLOSED),
    (P.UNKNOWN, P.REVERSED),
    (P.SUCCEEDED, P.PARTIALLY_REFUNDED), (P.SUCCEEDED, P.REFUNDED), (P.SUCCEEDED, P.REVERSED),
    (P.PARTIALLY_REFUNDED, P.PARTIALLY_REFUNDED), (P.PARTIALLY_REFUNDED, P.REFUNDED),
}
EXPECTED_REFUND = {
    (R.PROCESSING, R.SUCCEEDED), (R.PROCESSING, R.FAILED), (R.PROCESSING, R.UNKNOWN),
    (R.UNKNOWN, R.PROCESSING), (R.UNKNOWN, R.SUCCEEDED), (R.UNKNOWN, R.FAILED),
}


@pytest.mark.parametrize("frm,to", list(itertools.product(P, P)))
def test_payment_transition(frm: PaymentStatus, to: PaymentStatus) -> None:
    if (frm, to) in EXPECTED_PAYMENT:
        check_payment(frm, to)
    else:
        with pytest.raises(TransitionError):
            check_payment(frm, to)


@pytest.mark.parametrize("frm,to", list(itertools.product(R, R)))
def test_refund_transition(frm: RefundStatus, to: RefundStatus) -> None:
    if (frm, to) in EXPECTED_REFUND:
        check_refund(frm, to)
    else:
        with pytest.raises(TransitionError):
            check_refund(frm, to)


def test_tables_cover_every_state_and_match_expectations() -> None:
    assert set(PAYMENT_TRANSITIONS) == set(P)
    assert set(REFUND_TRANSITIONS) == set(R)
    assert {(a, b) for a, bs in PAYMENT_TRANSITIONS.items() for b in bs} == EXPECTED_PAYMENT
    assert {(a, b) for a, bs in REFUND_TRANSITIONS.items() for b in bs} == EXPECTED_REFUND


def test_failed_is_never_reached_from_a_paid_state() -> None:
    for paid in (P.SUCCEEDED, P.PARTIALLY_REFUNDED, P.REFUNDED):
        assert P.FAILED not in PAYMENT_TRANSITIONS[paid]
    # Money that moved is never un-moved by a status: only reversal or refunds leave SUCCEEDED.
    assert PAYMENT_TRANSITIONS[P.SUCCEEDED] == {P.PARTIALLY_REFUNDED, P.REFUNDED, P.REVERSED}


def test_open_states_have_exits() -> None:
    for s in PAYMENT_OPEN:
        assert PAYMENT_TRANSITIONS[s]
