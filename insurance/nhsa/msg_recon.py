"""Wire messages: reconciliation (3201/3202) and file transfer (9101/9102)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from .wire import Code, OptCode, WireDate, WireModel, WireTime, Yuan


class TotalsInput(WireModel):
    """3201 ``input.data``."""

    insutype: Code
    clr_type: Code
    setl_optins: Code
    stmt_begndate: WireDate
    stmt_enddate: WireDate
    medfee_sumamt: Yuan
    fund_pay_sumamt: Yuan
    acct_pay: Yuan
    fixmedins_setl_cnt: int


class TotalsOutput(WireModel):
    """3201 ``output.stmtinfo``."""

    setl_optins: Code
    stmt_rslt: Code  # 0 balanced, 1 not
    stmt_rslt_dscr: str | None = None


class DetailInput(WireModel):
    """3202 ``input.data``."""

    setl_optins: Code
    file_qury_no: str
    stmt_begndate: WireDate
    stmt_enddate: WireDate
    medfee_sumamt: Yuan
    fund_pay_sumamt: Yuan
    cash_payamt: Yuan
    fixmedins_setl_cnt: int
    clr_type: OptCode = None
    refd_setl_flag: OptCode = None


class FileInfo(WireModel):
    """3202 ``output.fileinfo`` and the 9101 answer."""

    file_qury_no: str
    filename: str
    dld_endtime: WireTime = None


class UploadInput(WireModel):
    """9101 ``input.fsUploadIn``: ``in`` is the file, Base64."""

    in_: str = Field(alias="in")
    filename: str
    fixmedins_code: str

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class DownloadInput(WireModel):
    """9102 ``input.fsDownloadIn``; the answer is the raw zip, not JSON."""

    file_qury_no: str
    filename: str
    fixmedins_code: str


# Column order of the files, per the spec.
UPLOAD_COLUMNS = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay",
                  "refd_setl_flag")
RESULT_COLUMNS = ("psn_no", "mdtrt_id", "setl_id", "msgid", "stmt_rslt", "refd_setl_flag", "memo",
                  "medfee_sumamt", "fund_pay_sumamt", "acct_pay")
