"""The sample bill files shipped in ``configs/his/samples/``.

    python -m his_adapters.fileimport.samples [directory]

writes ``his-bill-sample.csv`` and ``his-bill-sample.xlsx``: one day of a hospital's
four HIS bill types, with a refund, a cancelled line, cash and the smallest amount.
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from gateway.his import HisBill, HisBillLine

from .writer import CHINA, write_bill_csv, write_bill_xlsx

SAMPLE_DAY = dt.date(2024, 5, 20)
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "configs" / "his" / "samples"

_ROWS = (
    # bill type, serial, trade no, kind, fen, patient, name, visit, department, operator, channel, status, local time
    ("outpatient_registration", "GH2405200001", "YY202405200000001", "payment", 2500, "P1000001", "王伟", "MZ2405200001",
     "内科", "ZZJ01", "wechatpay", "normal", "08:01:12"),
    ("outpatient_registration", "GH2405200002", None, "payment", 1000, "P1000002", "李秀英", "MZ2405200002",
     "儿科", "SF001", "cash", "normal", "08:15:40"),
    ("outpatient_settlement", "MZ2405200001", "YY202405200000002", "payment", 48431, "P1000001", "王伟",
     "MZ2405200001", "内科", "ZZJ01", "alipay", "normal", "09:30:05"),
    ("outpatient_settlement", "MZ2405200002", "YY202405200000002", "refund", 16144, "P1000001", "王伟",
     "MZ2405200001", "内科", "SF001", "alipay", "normal", "11:02:00"),
    ("outpatient_settlement", "MZ2405200003", "YY202405200000003", "payment", 1, "P1000003", "张敏", "MZ2405200003",
     "眼科", "ZZJ02", "unionpay", "normal", "13:45:00"),
    ("outpatient_settlement", "MZ2405200004", None, "payment", 6660, "P1000003", "张敏", "MZ2405200003",
     "眼科", "SF002", "cash", "cancelled", "14:00:00"),
    ("inpatient_deposit", "YJ2405200001", "YY202405200000004", "payment", 500000, "P1000005", "刘洋", "ZY2405200001",
     "外科", "ZZJ01", "wechatpay", "normal", "10:20:30"),
    ("inpatient_settlement", "ZY2405200001", "YY202405200000005", "payment", 123456, "P1000006", "陈静",
     "ZY2405100003", "妇产科", "SF003", "wechatpay", "normal", "16:30:00"),
    ("inpatient_settlement", "ZY2405200002", "YY202405200000006", "refund", 76544, "P1000006", "陈静",
     "ZY2405100003", "妇产科", "SF003", "wechatpay", "normal", "16:35:00"),
)


def sample_bills() -> list[HisBill]:
    by_type: dict[str, list[HisBillLine]] = {}
    for (bill_type, serial, trade_no, kind, fen, patient, name, visit, dept, operator, channel, status,
         clock) in _ROWS:
        at = dt.datetime.combine(SAMPLE_DAY, dt.time.fromisoformat(clock), CHINA).astimezone(dt.UTC)
        by_type.setdefault(bill_type, []).append(HisBillLine(
            bill_type=bill_type, his_serial=serial, trade_no=trade_no,
            channel_trade_no=f"4200{serial}" if trade_no else None,
            refund_no=f"RF{serial}" if kind == "refund" else None, kind=kind, amount=fen, patient_id=patient,
            patient_name=name, visit_no=visit, department=dept, operator=operator, channel=channel, status=status,
            occurred_at=at))
    return [HisBill(day=SAMPLE_DAY, bill_type=t, lines=lines) for t, lines in by_type.items()]


def write_samples(directory: Path = SAMPLES_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path = directory / "his-bill-sample.csv", directory / "his-bill-sample.xlsx"
    csv_path.write_bytes(write_bill_csv(sample_bills()))
    xlsx_path.write_bytes(write_bill_xlsx(sample_bills(), title=f"医院HIS对账单 {SAMPLE_DAY}"))
    return [csv_path, xlsx_path]


if __name__ == "__main__":
    for written in write_samples(Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES_DIR):
        print(written)
