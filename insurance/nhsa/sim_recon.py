"""Simulated centre: reconciliation (3201 totals, 3202 details) and files (9101/9102)."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.insurance import DetailReconResultLine
from gateway.money import fen_to_yuan

from .recon_files import ReconFileError, build_result, parse_upload
from .sim_model import SimError, SimSettlement
from .wire import CST, format_time, parse_date

if TYPE_CHECKING:
    from .sim_core import InsuranceCentre


@dataclass(frozen=True)
class RawFile:
    """A 9102 answer: the file's bytes, sent as they are."""

    content: bytes
    filename: str


@dataclass
class StoredFile:
    file_qury_no: str
    filename: str
    content: bytes
    expires: dt.datetime


class ReconMixin:
    files: dict[str, StoredFile]

    def _init_recon(self: InsuranceCentre) -> None:
        self.files = {}

    def _store(self: InsuranceCentre, filename: str, content: bytes) -> StoredFile:
        stored = StoredFile(self.next_id("F"), filename, content, self.now() + dt.timedelta(days=1))
        self.files[stored.file_qury_no] = stored
        return stored

    @staticmethod
    def _file_info(f: StoredFile) -> dict[str, Any]:
        return {"file_qury_no": f.file_qury_no, "filename": f.filename, "dld_endtime": format_time(f.expires)}

    def _in_range(self: InsuranceCentre, d: dict[str, Any], setl_optins: str,
                  clr_type: str | None = None, insutype: str | None = None) -> list[SimSettlement]:
        begin, end = parse_date(d.get("stmt_begndate")), parse_date(d.get("stmt_enddate"))
        if begin is None or end is None or begin > end:
            raise SimError("对账起止日期无效")
        return [s for s in self.settlements.values()
                if s.setl_optins == setl_optins and begin <= s.time.astimezone(CST).date() <= end
                and (clr_type is None or s.clr_type == clr_type) and (insutype is None or s.insutype == insutype)]

    def tx_3201(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        optins = str(d.get("setl_optins"))
        rows = self._in_range(d, optins, str(d.get("clr_type")), str(d.get("insutype")))
        centre = {"medfee_sumamt": sum(s.buckets["total"] for s in rows),
                  "fund_pay_sumamt": sum(s.buckets["fund_total"] for s in rows),
                  "acct_pay": sum(s.buckets["acct_pay"] for s in rows),
                  # net count: a reversal cancels the settlement it reverses
                  "fixmedins_setl_cnt": sum(-1 if s.refund else 1 for s in rows)}
        diffs = []
        for key, value in centre.items():
            theirs = int(d.get(key, 0)) if key == "fixmedins_setl_cnt" else self._fen(d.get(key, "0"))
            if theirs != value:
                shown = str(value) if key == "fixmedins_setl_cnt" else fen_to_yuan(value)
                diffs.append(f"{key}: 医院{theirs if key == 'fixmedins_setl_cnt' else fen_to_yuan(theirs)}"
                             f" 中心{shown}")
        return {"stmtinfo": {"setl_optins": optins, "stmt_rslt": "1" if diffs else "0",
                             "stmt_rslt_dscr": "；".join(diffs) if diffs else "对账平"}}

    def tx_9101(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        up = data.get("fsUploadIn") or {}
        try:
            content = base64.b64decode(str(up.get("in", "")), validate=True)
        except (binascii.Error, ValueError):
            raise SimError("文件内容不是有效的Base64") from None
        if not content:
            raise SimError("文件内容不能为空")
        return self._file_info(self._store(str(up.get("filename") or "upload.zip"), content))

    def tx_9102(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        down = data.get("fsDownloadIn") or {}
        stored = self.files.get(str(down.get("file_qury_no")))
        if stored is None or stored.expires <= self.now():
            raise SimError(f"文件查询号[{down.get('file_qury_no')}]不存在或已过期")
        return RawFile(stored.content, stored.filename)

    def tx_3202(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        uploaded = self.files.get(str(d.get("file_qury_no")))
        if uploaded is None:
            raise SimError(f"文件查询号[{d.get('file_qury_no')}]不存在")
        try:
            theirs = parse_upload(uploaded.content)
        except (ReconFileError, ValueError) as exc:
            raise SimError(f"对账明细文件格式错误：{exc}") from None
        if len(theirs) != int(d.get("fixmedins_setl_cnt", -1)):
            raise SimError("结算笔数与明细文件行数不符")
        if sum(line.medfee_sumamt for line in theirs) != self._fen(d.get("medfee_sumamt")):
            raise SimError("医疗费总额与明细文件合计不符")
        clr_type = str(d["clr_type"]) if d.get("clr_type") else None
        ours = {s.setl_id: s for s in self._in_range(d, str(d.get("setl_optins")), clr_type)}
        result: list[DetailReconResultLine] = []
        for line in theirs:
            s = ours.pop(line.setl_id, None)
            if s is None:
                result.append(DetailReconResultLine(psn_no=line.psn_no, mdtrt_id=line.mdtrt_id, setl_id=line.setl_id,
                                                    balanced=False, stmt_rslt="1", refund=line.refund,
                                                    memo="中心无此结算记录"))
                continue
            same = (s.buckets["total"], s.buckets["fund_total"], s.buckets["acct_pay"], s.refund) == (
                line.medfee_sumamt, line.fund_pay_sumamt, line.acct_pay, line.refund)
            result.append(self._line(s, same, None if same else "金额或退费标志不一致"))
        for s in ours.values():
            result.append(self._line(s, False, "医院无此结算记录"))
        stored = self._store("result.zip", build_result(result))
        return {"fileinfo": self._file_info(stored)}

    @staticmethod
    def _line(s: SimSettlement, balanced: bool, memo: str | None) -> DetailReconResultLine:
        return DetailReconResultLine(psn_no=s.psn_no, mdtrt_id=s.mdtrt_id, setl_id=s.setl_id, msgid=s.msgid,
                                     balanced=balanced, stmt_rslt="0" if balanced else "1", refund=s.refund,
                                     memo=memo, medfee_sumamt=s.buckets["total"],
                                     fund_pay_sumamt=s.buckets["fund_total"], acct_pay=s.buckets["acct_pay"])
