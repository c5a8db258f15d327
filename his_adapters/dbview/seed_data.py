"""Deterministic HIS stand-in data: patients, visits, charges and one day of payments.

Pure Python (no I/O), so tests can compare what the adapter reads with what was
generated. Amounts are ``Decimal`` yuan with two places, times local naive datetimes.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gateway.money import yuan_to_fen

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂兰建华志红玉梅晨"
REGIONS = ("110101", "310104", "440106", "420102", "510107", "330106")
DEPARTMENTS = ("内科", "外科", "儿科", "妇产科", "眼科", "口腔科", "皮肤科", "中医科")
DOCTORS = ("张医生", "李医生", "王医生", "赵医生")
ITEMS = (("X001", "血常规"), ("X002", "尿常规"), ("Y101", "阿莫西林胶囊"), ("Y102", "布洛芬缓释胶囊"),
         ("J201", "胸部CT"), ("J202", "心电图"), ("Z301", "静脉输液"), ("Z302", "换药"))
CHANNELS = ("WX", "ZFB", "YL", "CASH")
BILL_CODES = {"GH": "outpatient_registration", "MZ": "outpatient_settlement",
              "YJ": "inpatient_deposit", "ZY": "inpatient_settlement"}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_digit(first17: str) -> str:
    """The 18th character of a resident identity number (ISO 7064 MOD 11-2)."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def valid_id_no(id_no: str) -> bool:
    return len(id_no) == 18 and id_no[:17].isdigit() and id_check_digit(id_no[:17]) == id_no[17]


@dataclass
class SeedData:
    day: dt.date
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # What a correct adapter must return, computed here, not through SQL.
    pending: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # patient_id → charges
    bills: dict[str, dict[str, Any]] = field(default_factory=dict)  # core bill type → count/total/serials

    def patients(self) -> list[dict[str, Any]]:
        return self.tables["patients"]


def _yuan(rng: random.Random, low: int, high: int) -> Decimal:
    """A random yuan amount between low and high yuan, in whole fen."""
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def generate(patients: int = 20, seed: int = 7, day: dt.date | None = None) -> SeedData:
    rng = random.Random(seed)
    day = day or dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    midnight = dt.datetime.combine(day, dt.time())
    data = SeedData(day=day, tables={k: [] for k in (
        "patients", "visits", "charges", "charge_items", "pay_records")})
    t = data.tables
    serial = iter(range(1, 1_000_000))
    item_id = iter(range(1, 1_000_000))

    def pay(bill: str, kind: str, amount: Decimal, pid: str, visit: str | None, at: dt.datetime,
            *, charge_id: str | None = None, status: str = "1", channel: str | None = None) -> str:
        n = next(serial)
        channel = channel or CHANNELS[n % len(CHANNELS)]
        online = channel != "CASH"
        pay_serial = f"S{day:%Y%m%d}{n:06d}"
        t["pay_records"].append({
            "pay_serial": pay_serial, "charge_id": charge_id, "patient_id": pid, "visit_no": visit,
            "bill_type": bill, "pay_kind": kind, "amount": amount, "channel_code": channel,
            "trade_no": f"YY{day:%Y%m%d}{n:08d}" if online else None,
            "channel_trade_no": f"42{day:%Y%m%d}{n:018d}" if online else None,
            "refund_no": f"RF{day:%Y%m%d}{n:06d}" if kind == "2" and online else None,
            "operator": "ZZJ01" if online else "SF001", "status": status, "pay_time": at})
        return pay_serial

    for i in range(patients):
        pid = f"P{1000001 + i}"
        gender = "1" if i % 2 == 0 else "2"
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 80 * 365))
        seq = rng.randint(0, 49) * 2 + (1 if gender == "1" else 0)
        first17 = f"{REGIONS[i % len(REGIONS)]}{birth:%Y%m%d}{seq:03d}"
        name = SURNAMES[rng.randrange(len(SURNAMES))] + "".join(
            GIVEN[rng.randrange(len(GIVEN))] for _ in range(rng.choice((1, 2))))
        t["patients"].append({"patient_id": pid, "name": name, "gender": gender,
                              "id_no": first17 + id_check_digit(first17), "card_no": f"C{880000 + i:08d}",
                              "phone": f"13{rng.randint(0, 999999999):09d}"})
        dept = DEPARTMENTS[i % len(DEPARTMENTS)]
        mz = f"MZ{day:%y%m%d}{i:04d}"
        seen = midnight + dt.timedelta(hours=8, minutes=7 * i)
        t["visits"].append({"visit_no": mz, "patient_id": pid, "visit_type": "MZ", "dept_name": dept,
                            "doctor_name": DOCTORS[i % len(DOCTORS)], "visit_time": seen})
        pay("GH", "1", Decimal(rng.choice(("10.00", "25.00", "50.00", "100.00"))), pid, mz, seen)
        # A paid outpatient charge, every fifth partly refunded.
        paid_amount = _yuan(rng, 5, 800)
        paid_id = f"CF{day:%y%m%d}{i:04d}1"
        t["charges"].append({"charge_id": paid_id, "visit_no": mz, "patient_id": pid, "charge_type": "MZ",
                             "total_amount": paid_amount, "status": "1", "create_time": seen})
        at = seen + dt.timedelta(minutes=40)
        pay("MZ", "1", paid_amount, pid, mz, at, charge_id=paid_id)
        if i % 5 == 4:
            pay("MZ", "2", (paid_amount / 3).quantize(Decimal("0.01")), pid, mz, at + dt.timedelta(hours=1),
                charge_id=paid_id)
        pending: list[dict[str, Any]] = []
        if i % 2 == 0:  # a pending prescription with items
            cid = f"CF{day:%y%m%d}{i:04d}2"
            items = [(ITEMS[rng.randrange(len(ITEMS))], _yuan(rng, 1, 300)) for _ in range(rng.randint(1, 4))]
            total = sum((a for _, a in items), Decimal("0.00"))
            t["charges"].append({"charge_id": cid, "visit_no": mz, "patient_id": pid, "charge_type": "MZ",
                                 "total_amount": total, "status": "0", "create_time": seen + dt.timedelta(hours=1)})
            for (code, item_name), amount in items:
                t["charge_items"].append({"item_id": next(item_id), "charge_id": cid, "item_code": code,
                                          "item_name": item_name, "qty": Decimal("1.00"), "amount": amount})
            pending.append({"charge_id": cid, "amount": yuan_to_fen(total), "items": len(items),
                            "bill_type": "outpatient_settlement", "visit_no": mz})
        if i % 4 == 1:  # an inpatient: deposits, some discharged
            zy = f"ZY{day:%y%m%d}{i:04d}"
            admitted = midnight + dt.timedelta(hours=9, minutes=11 * i)
            t["visits"].append({"visit_no": zy, "patient_id": pid, "visit_type": "ZY", "dept_name": dept,
                                "doctor_name": DOCTORS[(i + 1) % len(DOCTORS)], "visit_time": admitted})
            deposit = Decimal(rng.choice(("1000.00", "2000.00", "5000.00")))
            pay("YJ", "1", deposit, pid, zy, admitted)
            if i % 8 == 1:
                cost = _yuan(rng, 300, 900)
                pay("ZY", "1", cost, pid, zy, admitted + dt.timedelta(hours=6))
                pay("ZY", "2", deposit, pid, zy, admitted + dt.timedelta(hours=6, minutes=5))
            else:
                cid = f"YJ{day:%y%m%d}{i:04d}"
                t["charges"].append({"charge_id": cid, "visit_no": zy, "patient_id": pid, "charge_type": "YJ",
                                     "total_amount": Decimal("3000.00"), "status": "0", "create_time": admitted})
                pending.append({"charge_id": cid, "amount": 300000, "items": 0,
                                "bill_type": "inpatient_deposit", "visit_no": zy})
        data.pending[pid] = pending

    if patients:
        first = t["patients"][0]["patient_id"]
        mz0 = t["visits"][0]["visit_no"]
        # Exactness and boundaries: the smallest and a large amount; the first and last second
        # of the day; a cancelled line; lines just outside the day that must not appear.
        pay("MZ", "1", Decimal("0.01"), first, mz0, midnight)
        pay("MZ", "1", Decimal("12345678.90"), first, mz0, midnight + dt.timedelta(seconds=86399))
        pay("MZ", "1", Decimal("66.60"), first, mz0, midnight + dt.timedelta(hours=12), status="0")
        pay("MZ", "1", Decimal("77.70"), first, mz0, midnight - dt.timedelta(seconds=1))
        pay("MZ", "1", Decimal("88.80"), first, mz0, midnight + dt.timedelta(days=1))
    data.bills = _expected_bills(t["pay_records"], midnight)
    return data


def _expected_bills(records: list[dict[str, Any]], midnight: dt.datetime) -> dict[str, dict[str, Any]]:
    out = {core: {"count": 0, "total": 0, "serials": set(), "payments": 0, "refunds": 0}
           for core in BILL_CODES.values()}
    for r in records:
        if not midnight <= r["pay_time"] < midnight + dt.timedelta(days=1):
            continue
        bill = out[BILL_CODES[r["bill_type"]]]
        bill["count"] += 1
        bill["serials"].add(r["pay_serial"])
        fen = yuan_to_fen(r["amount"])
        bill["payments" if r["pay_kind"] == "1" else "refunds"] += 1
        if r["status"] == "1":
            bill["total"] += fen if r["pay_kind"] == "1" else -fen
    return out
