"""The reconciliation file: a fixed example, every check, and write→parse property tests."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.banks.refbank.recon import (
    RECORD_TYPES,
    ReconFile,
    ReconFormatError,
    ReconMismatchError,
    ReconRecord,
    clean,
    parse_recon,
    to_bill,
    write_recon,
)
from plugins.banks.refbank.wire import CST

DAY = dt.date(2024, 5, 1)
MID = "898110000000001"

SAMPLE = (
    "H|REFBANK-ECNY-RECON|1.0|898110000000001|20240501|20240502020000\n"
    "D|1|20240501093000|PAY|ECNY2024050109300012345678|P001|||12.30|0.02|12.28|CODEPAY|0021********5678|ICBC|"
    "POS-01|门诊缴费\n"
    "D|2|20240501100000|PAY|ECNY2024050110000087654321|P002|||100.00|0.20|99.80|QRPAY|0031********1234|CCB||"
    "住院预交金\n"
    "D|3|20240501113000|REFUND|ECNY2024050109300012345678|P001|ER2024050111300011112222|RF001|2.30|0.00|-2.30|"
    "CODEPAY|0021********5678|ICBC|POS-01|门诊缴费\n"
    "D|4|20240501120000|REVOKE|ECNY2024050110000087654321|P002|EV2024050112000033334444||100.00|-0.20|-99.80|"
    "QRPAY|0031********1234|CCB||住院预交金\n"
    "T|4|2|112.30|2|102.30|0.02|9.98\n"
)


def test_parse_sample() -> None:
    recon = parse_recon(SAMPLE.encode(), merchant_id=MID, bill_date=DAY)
    assert (recon.pay_count, recon.pay_amount, recon.refund_count, recon.refund_amount) == (2, 11230, 2, 10230)
    assert (recon.fee_amount, recon.settle_amount) == (2, 998)
    assert recon.created_at == dt.datetime(2024, 5, 2, 2, 0, tzinfo=CST)
    bill = to_bill(recon)
    assert (bill.total_count, bill.total_paid, bill.total_refunded, bill.total_fee) == (4, 11230, 10230, 2)
    pay, _, refund, revoke = bill.lines
    assert (pay.kind, pay.amount, pay.fee, pay.out_trade_no, pay.status) == ("payment", 1230, 2, "P001", "PAY")
    assert pay.channel_refund_no is None and pay.merchant_id == MID and pay.raw["subject"] == "门诊缴费"
    assert (refund.kind, refund.amount, refund.out_refund_no, refund.channel_refund_no) == (
        "refund", -230, "RF001", "ER2024050111300011112222")
    assert (revoke.kind, revoke.amount, revoke.fee, revoke.out_refund_no) == ("refund", -10000, -20, None)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    # CRLF lines and a BOM are read too
    assert parse_recon(("\ufeff" + SAMPLE.replace("\n", "\r\n")).encode()) == recon


def test_empty_day() -> None:
    text = "H|REFBANK-ECNY-RECON|1.0|898110000000001|20240501|20240502020000\nT|0|0|0.00|0|0.00|0.00|0.00\n"
    bill = to_bill(parse_recon(text))
    assert bill.lines == [] and bill.total_count == 0 and bill.total_paid == 0


@pytest.mark.parametrize("old,new,match", [
    ("T|4|2|112.30", "T|5|2|112.30", "record count"),
    ("T|4|2|112.30", "T|4|3|112.30", "pay count"),
    ("|2|112.30|2|", "|2|112.31|2|", "pay amount"),
    ("|2|102.30|", "|2|102.40|", "refund amount"),
    ("|0.02|9.98\n", "|0.03|9.98\n", "fee amount"),
    ("|0.02|9.98\n", "|0.02|9.99\n", "settle amount"),
    ("|12.30|0.02|12.28|", "|12.30|0.02|12.30|", "settle amount"),
    ("|2.30|0.00|-2.30|", "|2.30|0.01|-2.31|", "wrong sign"),
    ("D|1|20240501093000", "D|1|20240430093000", "not on"),
])
def test_figures_that_do_not_agree_are_refused(old: str, new: str, match: str) -> None:
    assert old in SAMPLE
    with pytest.raises(ReconMismatchError, match=match):
        parse_recon(SAMPLE.replace(old, new, 1))


def test_header_must_name_the_expected_merchant_and_date() -> None:
    with pytest.raises(ReconMismatchError, match="merchant"):
        parse_recon(SAMPLE, merchant_id="898110000000002")
    with pytest.raises(ReconMismatchError, match="2024-05-02"):
        parse_recon(SAMPLE, bill_date=dt.date(2024, 5, 2))


@pytest.mark.parametrize("mangle", [
    lambda s: s.replace("REFBANK-ECNY-RECON", "OTHER", 1),
    lambda s: s.replace("|1.0|", "|2.0|", 1),
    lambda s: s.replace("|20240501|", "|2024-05-01|", 1),
    lambda s: s.replace("D|2|", "D|3|", 1),
    lambda s: s.replace("|PAY|ECNY2024050110000087654321", "|CHARGE|ECNY2024050110000087654321", 1),
    lambda s: s.replace("|12.30|0.02|", "|12.3x|0.02|", 1),
    lambda s: s.replace("|12.30|0.02|12.28|", "|-12.30|0.02|-12.32|", 1),
    lambda s: s.replace("|POS-01|门诊缴费\nD|2", "|POS-01|门诊|缴费\nD|2", 1),
    lambda s: s.replace("T|4|", "X|4|", 1),
    lambda s: s.replace("T|4|2|112.30|2|102.30|0.02|9.98\n", ""),
    lambda s: s.replace("|P001|||", "|P001|ER1||", 1),
    lambda s: s.replace("|RF001|", "||", 1),
    lambda s: s.replace("D|1|20240501093000", "D|1|2024050109300", 1),
    lambda s: s.encode("gbk"),
    lambda s: "",
])
def test_malformed_files_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    data = mangle(SAMPLE)
    assert data != SAMPLE
    with pytest.raises(ReconFormatError):
        parse_recon(data)


def test_writer_cleans_text_fields() -> None:
    assert clean("a|b\nc\rd\x00e\u2028f") == "a/b c d e f"
    rec = ReconRecord(trade_time=dt.datetime(2024, 5, 1, 9, tzinfo=CST), record_type="PAY", bank_trade_no="E1",
                      out_trade_no="P1", amount=1, subject="挂号|复诊\n")
    back = parse_recon(write_recon(ReconFile(MID, DAY, dt.datetime(2024, 5, 2, tzinfo=CST), [rec])))
    assert back.records[0].subject == "挂号/复诊 "


# --- properties ---------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
_id = st.from_regex(r"[0-9A-Za-z_\-]{1,32}", fullmatch=True)


@st.composite
def records(draw: st.DrawFn) -> ReconRecord:
    kind = draw(st.sampled_from(RECORD_TYPES))
    seconds = draw(st.integers(0, 86_399))
    amount = draw(st.integers(1, 10**11))
    fee = draw(st.integers(0, amount))
    return ReconRecord(
        trade_time=dt.datetime.combine(DAY, dt.time(), CST) + dt.timedelta(seconds=seconds),
        record_type=kind,
        bank_trade_no=draw(_id),
        out_trade_no=draw(_id),
        amount=amount,
        fee=fee if kind == "PAY" else -fee,
        bank_refund_no=draw(_id) if kind != "PAY" else "",
        out_refund_no=draw(_id) if kind == "REFUND" else "",
        trade_type=draw(st.sampled_from(["CODEPAY", "QRPAY"])),
        wallet_id=draw(st.from_regex(r"0\d{3}\*{8}\d{4}", fullmatch=True)),
        wallet_operator=draw(st.sampled_from(["ICBC", "CCB", ""])),
        device_id=clean(draw(_text)),
        subject=clean(draw(_text)),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=30), st.booleans())
def test_write_then_parse_round_trips(rows: list[ReconRecord], crlf: bool) -> None:
    recon = ReconFile(MID, DAY, dt.datetime(2024, 5, 2, 2, 0, tzinfo=CST), rows)
    text = write_recon(recon)
    if crlf:
        text = text.replace("\n", "\r\n")
    back = parse_recon(text.encode(), merchant_id=MID, bill_date=DAY)
    assert back == recon
    bill = to_bill(back)
    assert bill.total_count == len(rows)
    assert bill.total_paid == sum(r.amount for r in rows if r.record_type == "PAY")
    assert bill.total_refunded == sum(r.amount for r in rows if r.record_type != "PAY")
    assert bill.total_fee == sum(r.fee for r in rows)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    assert back.settle_amount == back.pay_amount - back.refund_amount - back.fee_amount


@settings(max_examples=100, deadline=None)
@given(st.lists(records(), min_size=1, max_size=10), st.data())
def test_any_changed_amount_is_caught(rows: list[ReconRecord], data: st.DataObject) -> None:
    """Change one detail's amount (keeping the line well formed): the trailer no longer agrees."""
    recon = ReconFile(MID, DAY, dt.datetime(2024, 5, 2, tzinfo=CST), rows)
    lines = write_recon(recon).split("\n")
    i = data.draw(st.integers(1, len(rows)))
    fields = lines[i].split("|")
    r = rows[i - 1]
    delta = data.draw(st.integers(1, 1000))
    changed = ReconRecord(**{**r.__dict__, "amount": r.amount + delta})
    fields[9] = _yuan(changed.amount)
    fields[11] = _yuan(changed.settle_amount)
    lines[i] = "|".join(fields)
    with pytest.raises(ReconMismatchError):
        parse_recon("\n".join(lines))


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
