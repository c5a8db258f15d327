"""Deterministic sandbox people: Chinese names, ID numbers, card numbers, phones.

Everything is drawn from one seeded ``random.Random`` so a seed always gives the
same hospital, which keeps demo screenshots and test expectations stable.
"""
from __future__ import annotations

import datetime as dt
import random

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅鹏飞浩宇欣怡子涵雨轩"
# Real county-level area codes, so the numbers look like the ones a HIS stores.
AREA_CODES = ("110105", "110108", "310104", "310115", "440106", "440305", "510107", "330106",
              "320102", "420106", "610113", "370202")
INSURANCE_TYPES = ("职工医保", "居民医保", "自费", "异地医保")
DEPARTMENTS = {
    "outpatient": ("内科门诊", "外科门诊", "儿科门诊", "妇产科门诊", "心血管内科", "呼吸内科", "眼科", "皮肤科"),
    "inpatient": ("心血管内科病区", "普外科病区", "骨科病区", "呼吸内科病区", "神经内科病区"),
}
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The check character of a resident ID number (ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need the first 17 digits")
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def valid_id_no(id_no: str) -> bool:
    return len(id_no) == 18 and id_no[:17].isdigit() and id_check_digit(id_no[:17]) == id_no[17]


def chinese_name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def id_number(rng: random.Random) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 80))
    first17 = f"{rng.choice(AREA_CODES)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_digit(first17)


def card_number(rng: random.Random) -> str:
    # 就诊卡: a 12-digit number printed on the hospital's own card
    return "8" + "".join(str(rng.randrange(10)) for _ in range(11))


def phone_number(rng: random.Random) -> str:
    return rng.choice(("138", "139", "150", "158", "186", "188", "177", "135")) + \
        "".join(str(rng.randrange(10)) for _ in range(8))
