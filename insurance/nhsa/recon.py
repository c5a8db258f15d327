"""Reconciliation flows of the adapter: 3201 totals, 3202 details over 9101/9102."""
from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from gateway.errors import InsuranceProtocolError
from gateway.insurance import DetailReconRequest, DetailReconResult, ReconTotals, ReconTotalsResult
from gateway.money import fen_to_yuan

from .msg_recon import DetailInput, DownloadInput, FileInfo, TotalsInput, TotalsOutput, UploadInput
from .recon_files import ReconFileError, build_upload, parse_result

if TYPE_CHECKING:
    from .client import NhsaClient
    from .config import NhsaConfig


class ReconciliationFlows:
    client: NhsaClient
    config: NhsaConfig

    async def reconcile_totals(self, req: ReconTotals) -> ReconTotalsResult:
        data = TotalsInput(insutype=req.insutype, clr_type=req.clr_type, setl_optins=req.setl_optins,
                           stmt_begndate=req.begin_date, stmt_enddate=req.end_date,
                           medfee_sumamt=fen_to_yuan(req.medfee_sumamt), fund_pay_sumamt=fen_to_yuan(req.fund_pay_sumamt),
                           acct_pay=fen_to_yuan(req.acct_pay), fixmedins_setl_cnt=req.count).wire()
        answer = await self.client.call("3201", {"data": data}, insutype=req.insutype)
        out = self.client.parse(TotalsOutput, (answer.output or {}).get("stmtinfo"), answer)
        return ReconTotalsResult(setl_optins=out.setl_optins, balanced=out.stmt_rslt == "0",
                                 description=out.stmt_rslt_dscr, msgid=answer.msgid)

    async def upload_file(self, content: bytes, filename: str) -> FileInfo:
        """9101: hand a file to the centre; the answer's ``file_qury_no`` names it."""
        body = {"fsUploadIn": UploadInput(in_=base64.b64encode(content).decode("ascii"), filename=filename,
                                          fixmedins_code=self.config.fixmedins_code).wire()}
        answer = await self.client.call("9101", body)
        return self.client.parse(FileInfo, answer.output, answer)

    async def download_file(self, file_qury_no: str, filename: str) -> bytes:
        """9102: fetch a file the centre prepared (the raw bytes, not JSON)."""
        body = {"fsDownloadIn": DownloadInput(file_qury_no=file_qury_no, filename=filename,
                                              fixmedins_code=self.config.fixmedins_code).wire()}
        answer = await self.client.call("9102", body, binary=True)
        if answer.raw is None:
            raise InsuranceProtocolError("9102 answered JSON instead of a file", infno="9102", msgid=answer.msgid)
        return answer.raw

    async def reconcile_details(self, req: DetailReconRequest) -> DetailReconResult:
        stamp = self.client.msgids.next()[12:26]
        name = f"{self.config.fixmedins_code}_{req.setl_optins}_{stamp}"
        uploaded = await self.upload_file(build_upload(req.lines, f"{name}.txt"), f"{name}.zip")
        medfee = sum(line.medfee_sumamt for line in req.lines)
        fund = sum(line.fund_pay_sumamt for line in req.lines)
        cash = req.cash_payamt if req.cash_payamt is not None else (
            medfee - fund - sum(line.acct_pay for line in req.lines))
        data = DetailInput(setl_optins=req.setl_optins, file_qury_no=uploaded.file_qury_no,
                           stmt_begndate=req.begin_date, stmt_enddate=req.end_date, medfee_sumamt=fen_to_yuan(medfee),
                           fund_pay_sumamt=fen_to_yuan(fund), cash_payamt=fen_to_yuan(cash),
                           fixmedins_setl_cnt=len(req.lines),
                           clr_type=req.clr_type if self.client.profile.detail_recon_sends_clr_type else None).wire()
        answer = await self.client.call("3202", {"data": data})
        info = self.client.parse(FileInfo, (answer.output or {}).get("fileinfo"), answer)
        raw = await self.download_file(info.file_qury_no, info.filename)
        try:
            lines = parse_result(raw)
        except (ReconFileError, ValueError) as exc:
            raise InsuranceProtocolError(f"3202 result file: {exc}", infno="9102", msgid=answer.msgid) from exc
        return DetailReconResult(file_qury_no=info.file_qury_no, lines=lines, msgid=answer.msgid)


