"""The files of detail reconciliation (3202): a zipped tab-separated upload, and the
centre's zipped ``result.txt``. One row a settlement, no header, amounts in yuan."""
from __future__ import annotations

import io
import zipfile

from gateway.insurance import DetailReconLine, DetailReconResultLine
from gateway.money import fen_to_yuan, yuan_to_fen

from .msg_recon import RESULT_COLUMNS, UPLOAD_COLUMNS

RESULT_NAME = "result.txt"


class ReconFileError(ValueError):
    """A reconciliation file that does not follow the layout."""


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def _unzip_one(data: bytes, name: str | None = None) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if name is not None:
                if name not in names:
                    raise ReconFileError(f"the zip holds no {name} (has {names})")
                target = name
            elif len(names) == 1:
                target = names[0]
            else:
                raise ReconFileError(f"expected one file in the zip, found {names}")
            return zf.read(target).decode("utf-8")
    except zipfile.BadZipFile as exc:
        raise ReconFileError("not a zip file") from exc


def _rows(text: str, width: int) -> list[list[str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != width:
            raise ReconFileError(f"line {number}: {len(cells)} columns, expected {width}")
        rows.append(cells)
    return rows


def build_upload(lines: list[DetailReconLine], txt_name: str) -> bytes:
    text = "".join(
        "\t".join((line.setl_id, line.mdtrt_id, line.psn_no, fen_to_yuan(line.medfee_sumamt),
                   fen_to_yuan(line.fund_pay_sumamt), fen_to_yuan(line.acct_pay),
                   "1" if line.refund else "0")) + "\n"
        for line in lines)
    return _zip(txt_name, text)


def parse_upload(data: bytes) -> list[DetailReconLine]:
    out = []
    for cells in _rows(_unzip_one(data), len(UPLOAD_COLUMNS)):
        row = dict(zip(UPLOAD_COLUMNS, cells, strict=True))
        out.append(DetailReconLine(
            setl_id=row["setl_id"], mdtrt_id=row["mdtrt_id"], psn_no=row["psn_no"],
            medfee_sumamt=yuan_to_fen(row["medfee_sumamt"]), fund_pay_sumamt=yuan_to_fen(row["fund_pay_sumamt"]),
            acct_pay=yuan_to_fen(row["acct_pay"]), refund=row["refd_setl_flag"] == "1"))
    return out


def build_result(lines: list[DetailReconResultLine]) -> bytes:
    def amount(v: int | None) -> str:
        return "" if v is None else fen_to_yuan(v)

    text = "".join(
        "\t".join((r.psn_no, r.mdtrt_id, r.setl_id, r.msgid or "", r.stmt_rslt, "1" if r.refund else "0",
                   (r.memo or "").replace("\t", " "), amount(r.medfee_sumamt), amount(r.fund_pay_sumamt),
                   amount(r.acct_pay))) + "\n"
        for r in lines)
    return _zip(RESULT_NAME, text)


def parse_result(data: bytes) -> list[DetailReconResultLine]:
    out = []
    for cells in _rows(_unzip_one(data, RESULT_NAME), len(RESULT_COLUMNS)):
        row = dict(zip(RESULT_COLUMNS, cells, strict=True))
        out.append(DetailReconResultLine(
            psn_no=row["psn_no"], mdtrt_id=row["mdtrt_id"], setl_id=row["setl_id"], msgid=row["msgid"] or None,
            stmt_rslt=row["stmt_rslt"], balanced=row["stmt_rslt"] == "0", refund=row["refd_setl_flag"] == "1",
            memo=row["memo"] or None,
            medfee_sumamt=yuan_to_fen(row["medfee_sumamt"]) if row["medfee_sumamt"] else None,
            fund_pay_sumamt=yuan_to_fen(row["fund_pay_sumamt"]) if row["fund_pay_sumamt"] else None,
            acct_pay=yuan_to_fen(row["acct_pay"]) if row["acct_pay"] else None))
    return out
