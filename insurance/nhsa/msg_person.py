"""Wire messages: sign-in (9001/9002), person information (1101), e-voucher decode."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from .wire import Code, Dec, OptCode, OptYuan, WireDate, WireModel, WireTime


class SignInInput(WireModel):
    """9001 ``input.signIn``."""

    opter_no: str
    mac: str
    ip: str


class SignInOutput(WireModel):
    """9001 ``output.signinoutb``."""

    sign_time: WireTime = None
    sign_no: str


class SignOutInput(WireModel):
    """9002 ``input.signOut``."""

    sign_no: str
    opter_no: str


class PersonQueryInput(WireModel):
    """1101 ``input.data``."""

    mdtrt_cert_type: str
    mdtrt_cert_no: str
    card_sn: str = ""
    begntime: WireTime = None
    psn_cert_type: str = ""
    certno: str = ""
    psn_name: str = ""


class BaseInfo(WireModel):
    psn_no: str
    psn_cert_type: OptCode = None
    certno: str | None = None
    psn_name: str
    gend: OptCode = None
    naty: OptCode = None
    brdy: WireDate = None
    age: Dec = None


class InsuInfo(WireModel):
    """One ``insuinfo`` row. The wallet balance field, where a region has one, is
    named by the profile and read from the extras."""

    balc: OptYuan = None
    insutype: Code
    psn_type: OptCode = None
    psn_insu_stas: OptCode = None
    psn_insu_date: WireDate = None
    paus_insu_date: WireDate = None
    cvlserv_flag: OptCode = None
    insuplc_admdvs: Code
    emp_name: str | None = None


class PersonInfoOutput(WireModel):
    """1101 ``output``."""

    baseinfo: BaseInfo
    insuinfo: list[InsuInfo] = Field(default_factory=list)
    idetinfo: list[dict[str, Any]] = Field(default_factory=list)


class EVoucherQueryData(WireModel):
    """The ``data`` of a ``localQrCodeQuery`` request (``transType = ec.query``)."""

    orgId: str
    businessType: str
    operatorId: str
    operatorName: str
    officeId: str = ""
    officeName: str = ""
    deviceType: str = "SelfService"
    qrCode: str | None = None


class EVoucherQuery(WireModel):
    orgId: str
    transType: str = "ec.query"
    data: EVoucherQueryData


class EVoucherAnswer(WireModel):
    """``{code, message, data}``; ``data`` is a JSON *string* of :class:`EVoucherData`."""

    code: Code
    message: str | None = None
    data: str | None = None


class EVoucherData(WireModel):
    idNo: str
    idType: str = "01"
    userName: str
    ecToken: str
    insuOrg: str | None = None
    ecIndexNo: str | None = None
    gender: str | None = None
    birthday: str | None = None
