"""Fill a :class:`SimHospital` with seeded patients, visits and pending charges."""
from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING

from . import people
from .model import BILL_TYPES, VISIT_KIND, Item, Patient

if TYPE_CHECKING:
    from .model import SimHospital

# (name, code, unit price in fen) per bill type: what a charge of that type contains.
CATALOG: dict[str, tuple[tuple[str, str, int], ...]] = {
    "outpatient_registration": (("普通门诊诊查费", "110200001", 1000), ("副主任医师诊查费", "110200002", 2500),
                                ("主任医师诊查费", "110200003", 5000), ("急诊诊查费", "110200005", 1500)),
    "outpatient_settlement": (("阿莫西林胶囊 0.25g*24粒", "XY0012", 1860), ("血常规检查", "250101015", 2000),
                              ("胸部CT平扫", "210300001", 22000), ("头孢克肟分散片 0.1g*6片", "XY0458", 3250),
                              ("尿常规", "250102001", 800), ("静脉采血", "120400006", 500),
                              ("复方甘草口服溶液 100ml", "XY0931", 1250)),
    "inpatient_deposit": (("住院预交金", "YJ0001", 100000), ("住院预交金", "YJ0001", 300000),
                          ("住院预交金", "YJ0001", 500000)),
    "inpatient_settlement": (("床位费", "110900001", 5000), ("Ⅱ级护理", "120100004", 2800),
                             ("静脉输液", "120400001", 1200), ("心电图检查", "310701001", 3000),
                             ("住院诊查费", "110300001", 2000)),
}


def _items(rng: random.Random, bill_type: str) -> list[Item]:
    catalog = CATALOG[bill_type]
    if bill_type in ("outpatient_registration", "inpatient_deposit"):
        name, code, price = rng.choice(catalog)
        return [Item(name, code, "1", price)]
    chosen = rng.sample(catalog, rng.randint(1, 3))
    items = []
    for name, code, price in chosen:
        qty = rng.randint(1, 3) if bill_type == "outpatient_settlement" else rng.randint(1, 7)
        items.append(Item(name, code, str(qty), price * qty))
    return items


def populate(hospital: SimHospital, *, seed: int, patients: int, now: dt.datetime) -> None:
    rng = random.Random(seed)
    doctors = [people.chinese_name(rng) for _ in range(12)]
    for index in range(patients):
        patient = hospital.add_patient(Patient(
            patient_id=f"{2000001 + index}", name=people.chinese_name(rng), id_no=people.id_number(rng),
            card_no=people.card_number(rng), phone=people.phone_number(rng),
            insurance_type=rng.choice(people.INSURANCE_TYPES)))
        # Bill types rotate over the patients so every seed holds all four kinds.
        for k in range(rng.randint(1, 3)):
            bill_type = BILL_TYPES[(index + k) % len(BILL_TYPES)]
            kind = VISIT_KIND[bill_type]
            visit = next((v for v in hospital.visits.values()
                          if v.patient_id == patient.patient_id and v.kind == kind), None)
            if visit is None:
                back = dt.timedelta(minutes=rng.randint(30, 300)) if kind == "outpatient" \
                    else dt.timedelta(days=rng.randint(1, 9), minutes=rng.randint(0, 600))
                visit = hospital.open_visit(patient.patient_id, kind, department=rng.choice(people.DEPARTMENTS[kind]),
                                            doctor=rng.choice(doctors), opened_at=now - back)
            items = _items(rng, bill_type)
            created = min(now, visit.opened_at + dt.timedelta(minutes=rng.randint(5, 25)))
            hospital.add_charge(patient.patient_id, sum(i.amount for i in items), bill_type=bill_type,
                                items=items, visit_no=visit.visit_no, created_at=created)
