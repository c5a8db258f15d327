"""The matching core: one test per class (with its precedence rules), two-way mode, inputs,
and the synthetic day whose injected differences must be found exactly."""
from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from gateway.recon.matching import (
    CLASSES,
    DIFFERENCE_CLASSES,
    OUTPUT_COLUMNS,
    MatchResult,
    match_day,
    match_two_way,
)
from gateway.recon.synth import VARIANTS_BY_CLASS, generate_day

D = dt.date(2026, 3, 16)


def days(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


PLATFORM = {"txn_id": pl.String, "kind": pl.String, "amount": pl.Int64, "day": pl.Date, "channel": pl.String,
            "status": pl.String, "order_ref": pl.String}
HIS = {"txn_id": pl.String, "his_serial": pl.String, "kind": pl.String, "amount": pl.Int64, "day": pl.Date,
       "status": pl.String}
CHANNEL = {"txn_id": pl.String, "channel_trade_no": pl.String, "kind": pl.String, "amount": pl.Int64,
           "day": pl.Date, "channel": pl.String}


def P(txn: str, amount: int = 1000, day: int = 0, kind: str = "payment", status: str = "SUCCEEDED",
      ref: str | None = None, channel: str = "wechatpay") -> dict[str, Any]:
    return {"txn_id": txn, "kind": kind, "amount": amount, "day": days(day), "channel": channel, "status": status,
            "order_ref": ref}


def H(txn: str | None, amount: int = 1000, day: int = 0, kind: str = "payment", status: str = "normal",
      serial: str | None = None) -> dict[str, Any]:
    return {"txn_id": txn, "his_serial": serial or f"H-{txn}", "kind": kind, "amount": amount, "day": days(day),
            "status": status}


def C(txn: str | None, amount: int = 1000, day: int = 0, kind: str = "payment", trade_no: str | None = None,
      channel: str = "wechatpay") -> dict[str, Any]:
    return {"txn_id": txn, "channel_trade_no": trade_no or f"T-{txn}", "kind": kind, "amount": amount,
            "day": days(day), "channel": channel}


def frames(p: list, h: list, c: list) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (pl.DataFrame(p, schema=PLATFORM), pl.DataFrame(h, schema=HIS), pl.DataFrame(c, schema=CHANNEL))


def run(p: list | None = None, h: list | None = None, c: list | None = None,
        window: int = 1) -> tuple[dict, MatchResult]:
    res = match_day(*frames(p or [], h or [], c or []), D, window)
    return by_key(res), res


def by_key(res: MatchResult) -> dict[tuple[str, str], dict[str, Any]]:
    rows = res.rows.to_dicts()
    out = {(r["txn_key"], r["kind"]): r for r in rows}
    assert len(out) == len(rows), "one row per (txn_key, kind)"
    assert res.rows.columns == OUTPUT_COLUMNS
    assert sum(res.summary.values()) == len(rows) and list(res.summary) == list(CLASSES)
    return out


def cls(rows: dict, txn: str, kind: str = "payment") -> str:
    return rows[(txn, kind)]["cls"]


# -- one test per class --------------------------------------------------------------------------


def test_matched() -> None:
    rows, res = run(
        p=[P("pay1", 1234, ref="CHG1", channel="alipay"), P("ref1", 500, kind="refund", ref="CHG1", channel="alipay")],
        h=[H("pay1", 1234, serial="HS1"), H("ref1", 500, kind="refund")],
        c=[C("pay1", 1234, trade_no="2026031600001", channel="alipay"),
           C("ref1", 500, kind="refund", channel="alipay")],
    )
    assert res.summary["matched"] == 2 and res.mode == "t1" and res.day == D
    r = rows[("pay1", "payment")]
    assert r == {"txn_key": "pay1", "txn_id": "pay1", "kind": "payment", "cls": "matched", "his_amount": 1234,
                 "platform_amount": 1234, "channel_amount": 1234, "in_his": True, "in_platform": True,
                 "in_channel": True, "other_day": None, "platform_status": "SUCCEEDED", "his_status": "normal",
                 "his_serial": "HS1", "channel_trade_no": "2026031600001", "channel": "alipay", "order_ref": "CHG1"}
    assert cls(rows, "ref1", "refund") == "matched"
    assert res.differences.height == 0
    # lines of other days in the window do not take part when D is complete
    rows, _ = run(p=[P("pay1"), P("pay1", day=1)], h=[H("pay1")], c=[C("pay1"), C("pay1", day=-1)])
    assert cls(rows, "pay1") == "matched" and len(rows) == 1


def test_amount_mismatch() -> None:
    rows, res = run(
        p=[P("a"), P("b"), P("c", 1007), P("r", 300, kind="refund")],
        h=[H("a", 1001), H("b"), H("c"), H("r", 300, kind="refund")],
        c=[C("a"), C("b", 1100), C("c"), C("r", 400, kind="refund")],
    )
    assert res.summary["amount_mismatch"] == 4
    assert (rows[("a", "payment")]["his_amount"], rows[("a", "payment")]["platform_amount"],
            rows[("a", "payment")]["channel_amount"]) == (1001, 1000, 1000)
    assert rows[("b", "payment")]["channel_amount"] == 1100 and cls(rows, "b") == "amount_mismatch"
    assert rows[("c", "payment")]["platform_amount"] == 1007 and cls(rows, "c") == "amount_mismatch"
    assert cls(rows, "r", "refund") == "amount_mismatch"
    assert all(r["other_day"] is None for r in rows.values())


def test_cross_day() -> None:
    rows, res = run(
        p=[P("cut_next"), P("cut_prev", day=-1), P("ref_next", 200, kind="refund"), P("his_only", day=-1),
           P("his_prev"), P("dup_other", ref="CHG9"), P("dup_self", ref="CHG9"), P("plat_only")],
        h=[H("cut_next"), H("cut_prev", day=-1), H("ref_next", 200, kind="refund", day=1), H("his_only"),
           H("his_prev", day=-1), H("dup_other"), H("dup_self", day=1), H("plat_only", day=1)],
        c=[C("cut_next", day=1), C("cut_prev"), C("ref_next", 200, kind="refund"), C("his_only", day=-1),
           C("his_prev"), C("dup_other"), C("dup_self"), C("plat_only", day=1)],
    )
    r = rows[("cut_next", "payment")]  # paid 23:59 on D, the channel's bill says D+1
    assert r["cls"] == "cross_day" and r["other_day"] == days(1) and not r["in_channel"] and r["channel_amount"] is None
    r = rows[("cut_prev", "payment")]  # only the channel has it on D; HIS and ledger on D-1
    assert r["cls"] == "cross_day" and r["other_day"] == days(-1) and r["in_channel"] and not r["in_platform"]
    assert rows[("ref_next", "refund")]["cls"] == "cross_day"  # a refund HIS booked the next day
    assert rows[("ref_next", "refund")]["other_day"] == days(1)
    r = rows[("his_only", "payment")]  # two sides missing, both found the day before
    assert r["cls"] == "cross_day" and r["other_day"] == days(-1)
    # precedence: cross_day before long, duplicate and status_mismatch (rule 8)
    assert cls(rows, "his_prev") == "cross_day"  # would be long
    assert cls(rows, "dup_self") == "cross_day"  # would be duplicate (dup_other reached HIS)
    assert cls(rows, "plat_only") == "cross_day"  # would be status_mismatch (ledger alone)
    assert cls(rows, "dup_other") == "matched"
    assert res.summary["cross_day"] == 7

    # only within the window: D+2 is too far for window 1, not for window 2
    lines = dict(p=[P("far")], h=[H("far")], c=[C("far", day=2)])
    assert cls(run(**lines)[0], "far") == "short"
    rows, _ = run(**lines, window=2)
    assert cls(rows, "far") == "cross_day" and rows[("far", "payment")]["other_day"] == days(2)
    assert cls(run(p=[P("w0")], h=[H("w0")], c=[C("w0", day=1)], window=0)[0], "w0") == "short"
    # every missing side must be found: the ledger the day before but no HIS anywhere is long
    assert cls(run(p=[P("half", day=-1)], c=[C("half")])[0], "half") == "long"
    # the nearest day is reported, the earlier one on a tie
    rows, _ = run(p=[P("near")], h=[H("near")], c=[C("near", day=-2), C("near", day=1)], window=2)
    assert rows[("near", "payment")]["other_day"] == days(1)
    rows, _ = run(p=[P("tie")], h=[H("tie", day=1)], c=[C("tie", day=-1)])
    assert rows[("tie", "payment")]["other_day"] == days(-1)
    rows, _ = run(p=[P("tie2")], h=[H("tie2")], c=[C("tie2", day=1), C("tie2", day=-1)])
    assert rows[("tie2", "payment")]["other_day"] == days(-1)
    # lines of the same id but the other kind do not count
    assert cls(run(p=[P("k")], h=[H("k")], c=[C("k", kind="refund", day=1)])[0], "k") == "short"


def test_duplicate() -> None:
    rows, res = run(
        p=[P("first", ref="CHG1"), P("second", ref="CHG1"),  # paid twice on D
           P("old", ref="CHG2", day=-1), P("again", ref="CHG2"),  # first payment the day before
           P("x1", ref="CHG3"), P("x2", ref="CHG3"),  # neither reached HIS: both long
           P("failed", ref="CHG4", status="FAILED"), P("y", ref="CHG4"),  # the other did not move money
           P("noref"), P("z", ref="CHG5", kind="refund"), P("z2", ref="CHG5"),  # null ref; a refund is no payment
           P("cancelled", ref="CHG6"), P("w", ref="CHG6"),  # the other's HIS line is cancelled
           P("far", ref="CHG7", day=-2), P("v", ref="CHG7")],  # the other is outside the window
        h=[H("first"), H("old", day=-1), H("failed"), H("z", kind="refund"), H("cancelled", status="cancelled"),
           H("far", day=-2)],
        c=[C("first"), C("second"), C("old", day=-1), C("again"), C("x1"), C("x2"), C("y"), C("noref"),
           C("z", kind="refund"), C("z2"), C("cancelled"), C("w"), C("far", day=-2), C("v")],
    )
    assert cls(rows, "first") == "matched"
    r = rows[("second", "payment")]
    assert r["cls"] == "duplicate" and r["order_ref"] == "CHG1" and not r["in_his"] and r["in_channel"]
    assert cls(rows, "again") == "duplicate"
    assert ("old", "payment") not in rows  # no line on D
    assert res.summary["duplicate"] == 2
    # not duplicates: each is long
    for txn in ("x1", "x2", "y", "noref", "z2", "w", "v"):
        assert cls(rows, txn) == "long", txn
    assert cls(rows, "failed") == "short"
    assert cls(rows, "cancelled") == "status_mismatch"


def test_long() -> None:
    rows, res = run(
        p=[P("pc"), P("rf", 300, kind="refund"), P("far")],
        h=[H("far", day=2)],  # outside the window
        c=[C("pc"), C("conly"), C("rf", 300, kind="refund"), C("far"), C(None, 50, trade_no="4200000001")],
    )
    r = rows[("pc", "payment")]
    assert r["cls"] == "long" and r["in_platform"] and r["in_channel"] and not r["in_his"]
    assert r["his_amount"] is None and r["channel_amount"] == 1000
    r = rows[("conly", "payment")]  # money at the channel, the ledger has no line at all
    assert r["cls"] == "long" and not r["in_platform"] and r["platform_status"] is None
    assert cls(rows, "rf", "refund") == "long" and cls(rows, "far") == "long"
    r = rows[("4200000001", "payment")]  # a channel line without a gateway id
    assert r["cls"] == "long" and r["txn_id"] is None and r["channel_trade_no"] == "4200000001"
    assert res.summary["long"] == 5 and res.differences.height == 5


def test_short() -> None:
    rows, res = run(
        p=[P("hp"), P("hf", status="FAILED"), P("far")],
        h=[H("hp"), H("hf"), H("honly", 70, kind="refund"), H(None, 880, serial="HIS-0042"), H("far")],
        c=[C("far", day=-2)],  # outside the window
    )
    r = rows[("hp", "payment")]
    assert r["cls"] == "short" and r["in_his"] and r["in_platform"] and not r["in_channel"]
    assert cls(rows, "hf") == "short" and rows[("hf", "payment")]["platform_status"] == "FAILED"
    assert cls(rows, "honly", "refund") == "short"
    r = rows[("HIS-0042", "payment")]  # a HIS line without the gateway id: a row of its own
    assert r["cls"] == "short" and r["txn_id"] is None and r["his_serial"] == "HIS-0042" and r["his_amount"] == 880
    assert cls(rows, "far") == "short"
    assert res.summary["short"] == 5


def test_status_mismatch() -> None:
    rows, res = run(
        p=[P("pfail", status="FAILED"), P("punk", status="UNKNOWN"), P("hcan"), P("ponly"), P("pcan"),
           P("amt", status="CLOSED"), P("cross", status="FAILED"), P("cross2", day=-1)],
        h=[H("pfail"), H("hcan", status="cancelled"), H("nop_hcan", status="cancelled"), H("pcan", status="cancelled"),
           H("nop"), H("amt", 999), H("cross", day=1), H("cross2", status="cancelled")],
        c=[C("pfail"), C("punk"), C("hcan"), C("nop_hcan"), C("nop"), C("amt", 1001), C("cross"), C("cross2")],
    )
    # rule 2: the channel has the money but the ledger or HIS says it did not move
    assert cls(rows, "pfail") == "status_mismatch"
    assert cls(rows, "punk") == "status_mismatch"  # not long: the ledger line is not SUCCEEDED
    assert cls(rows, "hcan") == "status_mismatch"
    assert cls(rows, "nop_hcan") == "status_mismatch"
    assert cls(rows, "amt") == "status_mismatch"  # before amount_mismatch
    assert cls(rows, "cross") == "status_mismatch"  # before cross_day: the conflict is on D
    assert cls(rows, "cross2") == "status_mismatch"  # HIS cancelled what the channel has; ledger on D-1
    # rule 8: the ledger moved money nobody else has; the ledger lacks what channel and HIS have
    r = rows[("ponly", "payment")]
    assert r["cls"] == "status_mismatch" and r["in_platform"] and not r["in_his"] and not r["in_channel"]
    assert cls(rows, "pcan") == "status_mismatch"
    r = rows[("nop", "payment")]
    assert r["cls"] == "status_mismatch" and not r["in_platform"] and r["in_his"] and r["in_channel"]
    assert res.summary["status_mismatch"] == 10


def test_no_money() -> None:
    rows, res = run(
        p=[P("failed", status="FAILED"), P("closed", status="CLOSED")],
        h=[H("closed", status="cancelled"), H("hcan", status="cancelled"), H(None, serial="HIS-7", status="cancelled")],
    )
    for key in [("failed", "payment"), ("closed", "payment"), ("hcan", "payment"), ("HIS-7", "payment")]:
        assert rows[key]["cls"] == "no_money", key
    assert res.summary["no_money"] == 4 and res.differences.height == 0
    assert DIFFERENCE_CLASSES == set(CLASSES) - {"matched", "no_money"}


def test_class_codes_and_labels() -> None:
    assert list(CLASSES) == ["matched", "amount_mismatch", "cross_day", "duplicate", "long", "short",
                             "status_mismatch", "no_money"]
    assert CLASSES["matched"] == ("已平", "Matched")
    assert [zh for zh, _ in CLASSES.values()] == ["已平", "金额不符", "跨日伪单边", "重复支付", "长款", "短款",
                                                   "状态不符", "无资金往来"]
    _, res = run()
    assert res.rows.height == 0 and res.summary == {c: 0 for c in CLASSES}


# -- two-way (T+0) ---------------------------------------------------------------------------------


def test_two_way() -> None:
    p, h, _ = frames(
        [P("m"), P("amt", 900), P("long"), P("failed", status="FAILED"), P("next"), P("first", ref="CHG1"),
         P("second", ref="CHG1"), P("hcan"), P("void", status="CLOSED")],
        [H("m"), H("amt"), H("failed"), H("honly", kind="refund"), H("next", day=1), H("first"),
         H("hcan", status="cancelled")],
        [],
    )
    res = match_two_way(p, h, D, 1)
    rows = by_key(res)
    assert res.mode == "t0"
    assert cls(rows, "m") == "matched" and cls(rows, "amt") == "amount_mismatch"
    assert cls(rows, "long") == "long"  # ledger money, no HIS
    assert cls(rows, "failed") == "short" and cls(rows, "honly", "refund") == "short"  # HIS, no ledger money
    assert cls(rows, "next") == "cross_day" and rows[("next", "payment")]["other_day"] == days(1)
    assert cls(rows, "second") == "duplicate" and cls(rows, "first") == "matched"
    assert cls(rows, "hcan") == "status_mismatch" and cls(rows, "void") == "no_money"
    assert all(not r["in_channel"] and r["channel_amount"] is None for r in rows.values())
    assert rows[("m", "payment")]["channel"] == "wechatpay"


# -- inputs --------------------------------------------------------------------------------------------


def test_repeated_lines_are_folded() -> None:
    p, h, c = frames([P("a"), P("solo", 10), P("solo", 20)], [H("a", 600), H("a", 400)], [C("a")])
    rows = by_key(match_day(p, h, c, D))
    assert rows[("a", "payment")]["his_amount"] == 1000 and cls(rows, "a") == "matched"
    assert rows[("solo", "payment")]["platform_amount"] == 30 and cls(rows, "solo") == "status_mismatch"
    # a HIS line for the money and one cancelling it: summed, the normal status wins
    p, h, c = frames([P("b")], [H("b", status="cancelled"), H("b")], [C("b")])
    rows = by_key(match_day(p, h, c, D))
    assert rows[("b", "payment")]["his_amount"] == 2000 and cls(rows, "b") == "amount_mismatch"


def test_inputs_are_checked_and_normalised() -> None:
    p, h, c = frames([P("a")], [H("a")], [C("a")])
    with pytest.raises(TypeError, match="integer fen"):
        match_day(p.with_columns(pl.col("amount").cast(pl.Float64)), h, c, D)
    with pytest.raises(ValueError, match="kind"):
        match_day(p.with_columns(kind=pl.lit("PAY")), h, c, D)
    with pytest.raises(ValueError, match="missing column"):
        match_day(p.drop("status"), h, c, D)
    with pytest.raises(ValueError, match="txn_id"):
        match_day(p.with_columns(txn_id=pl.lit(None, pl.String)), h, c, D)
    with pytest.raises(ValueError, match="window_days"):
        match_day(p, h, c, D, -1)
    # lazy frames, narrower integers, datetimes and extra columns are fine
    rows = by_key(match_day(p.lazy().with_columns(pl.col("amount").cast(pl.Int32), note=pl.lit("x")),
                            h.with_columns(pl.col("day").cast(pl.Datetime)), c.lazy(), D))
    assert cls(rows, "a") == "matched" and rows[("a", "payment")]["platform_amount"] == 1000


# -- the synthetic day: injected differences found exactly ---------------------------------------------


@pytest.mark.parametrize("seed,window", [(1, 1), (2, 1), (3, 2)])
def test_synthetic_day_found_equals_injected(seed: int, window: int) -> None:
    day = generate_day(3000, seed, window_days=window)
    assert day.platform.height > 3 * 3000 - 100 and set(day.platform["channel"]) == {"wechatpay", "alipay",
                                                                                     "unionpay", "ecny"}
    injected = {cls for (_, _), cls in day.truth.items()}
    assert injected == set(VARIANTS_BY_CLASS), "every class is injected"
    assert set(day.injected) == {v for names in VARIANTS_BY_CLASS.values() for v in names}, "every variant is"
    res = match_day(day.platform, day.his, day.channel, day.day, day.window_days)
    rows = res.rows
    found = {(k, kind): c for k, kind, c in rows.filter(pl.col("cls") != "matched")
             .select("txn_key", "kind", "cls").iter_rows()}
    missed = {k: c for k, c in day.truth.items() if found.get(k) != c}
    invented = {k: c for k, c in found.items() if day.truth.get(k) != c}
    assert not missed and not invented
    assert rows.height == day.expected_rows
    assert rows.select(pl.struct("txn_key", "kind").is_unique().all()).item()
    assert res.summary == {c: day.expected.get(c, 0) for c in CLASSES}
    refunds = rows.filter(pl.col("kind") == "refund").height / rows.height
    assert 0.05 < refunds < 0.12


def test_synthetic_day_is_reproducible() -> None:
    a, b, c = generate_day(2000, 5), generate_day(2000, 5), generate_day(2000, 6)
    assert a.truth == b.truth and a.platform.equals(b.platform) and a.his.equals(b.his)
    assert a.truth != c.truth
