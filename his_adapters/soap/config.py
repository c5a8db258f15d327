"""Configuration of the SOAP/XML business-system adapter.

The adapter knows no HIS's element names: everything foreign lives here. One
``SoapHisConfig`` describes one web service: where it is, how to wrap a message in
a SOAP envelope, and for each function (pending charges, write-back …) the request
template, where the result code, message and records are (XPaths), which codes
mean what, and a :class:`gateway.mapping.Mapping` from each record to core fields.
See ``docs/his/soap.md``.
"""
from __future__ import annotations

from typing import Literal

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.mapping import Mapping


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WsSecurity(_Model):
    """A WS-Security UsernameToken in the SOAP header."""

    username: str
    password: SecretStr
    digest: bool = True  # PasswordDigest (with Nonce and Created) rather than PasswordText


class HeaderToken(_Model):
    """A fixed token the service expects on every call.

    ``http``: an HTTP header ``name: value``. ``soap``: an element ``<name>value</name>``
    in the SOAP header, in ``namespace`` when given.
    """

    location: Literal["http", "soap"] = "http"
    name: str
    value: SecretStr
    namespace: str | None = None


def _check_xpath(value: str | None) -> str | None:
    if value:
        try:
            etree.XPath(value)
        except etree.XPathSyntaxError as exc:
            raise ValueError(f"not an XPath: {value!r} ({exc})") from exc
    return value


class SoapFunction(_Model):
    """One business function carried by the service (查询待缴费, 缴费确认 …)."""

    trade_code: str | None = None  # sent in ``trade_code_element`` (and usable as ${trade_code})
    operation: str | None = None  # overrides the service-wide operation for this function
    soap_action: str | None = None  # overrides the service-wide SOAPAction
    template: str  # XML text with ${name|filter} placeholders, values XML-escaped
    result_code: str  # XPath of the result code, relative to the answer's root
    ok_codes: list[str] = Field(min_length=1)
    refusal_codes: list[str] = Field(default_factory=list)
    recorded_codes: list[str] = Field(default_factory=list)  # "already recorded": a write-back succeeded before
    not_found_codes: list[str] = Field(default_factory=list)  # write-back query: no such payment
    message: str | None = None  # XPath of the result message
    records: str | None = None  # XPath of the list of records; None: the answer's root is the record
    items: str | None = None  # pending charges: XPath of the items, relative to each record
    item_mapping: Mapping | None = None
    summary_count: str | None = None  # bills: XPath of the system's line count
    summary_amount: str | None = None  # bills: XPath of payments minus refunds (the mapping's unit)
    mapping: Mapping = Field(default_factory=Mapping)

    _xpaths = field_validator("result_code", "message", "records", "items", "summary_count",
                              "summary_amount")(_check_xpath)

    @model_validator(mode="after")
    def _codes_disjoint(self) -> SoapFunction:
        groups = {"ok_codes": self.ok_codes, "refusal_codes": self.refusal_codes,
                  "recorded_codes": self.recorded_codes, "not_found_codes": self.not_found_codes}
        seen: dict[str, str] = {}
        for group, codes in groups.items():
            for code in codes:
                if code in seen:
                    raise ValueError(f"code {code!r} is in both {seen[code]} and {group}")
                seen[code] = group
        for name, spec in self.mapping.fields.items():
            _check_xpath(spec if isinstance(spec, str) else spec.src)
        if self.items and self.item_mapping is None:
            raise ValueError("items needs an item_mapping")
        return self

    @property
    def known_codes(self) -> set[str]:
        return {*self.ok_codes, *self.refusal_codes, *self.recorded_codes, *self.not_found_codes}


class SoapFunctions(_Model):
    pending: SoapFunction | None = None
    write_back: SoapFunction | None = None
    write_back_query: SoapFunction | None = None
    refund_write_back: SoapFunction | None = None
    bill: SoapFunction | None = None
    insurance_write_back: SoapFunction | None = None  # 医保结算回写
    insurance_reversal_write_back: SoapFunction | None = None  # 医保结算撤销回写


class SoapHisConfig(_Model):
    """One SOAP/XML web service of a business system."""

    endpoint: str  # the service URL (without ?wsdl)
    soap_version: Literal["1.1", "1.2"] = "1.1"
    operation: str  # local name of the operation element, e.g. "HisService"
    namespace: str  # the operation's namespace (the WSDL's targetNamespace)
    soap_action: str | None = None  # None: "<namespace>/<operation>"; "" sends an empty action
    qualified_parameters: bool = False  # parameter elements in the operation namespace
    payload_style: Literal["embedded", "inline"] = "embedded"
    # embedded: <operation><trade_code_element/><message_element>escaped XML</message_element>
    trade_code_element: str | None = None
    message_element: str = "inputXml"
    # the answer's element holding the inner XML (local name); None: the first child
    result_element: str | None = None
    cdata: bool = False  # send the inner XML as CDATA rather than escaped text
    strip_namespaces: bool = False  # drop namespaces from the answer before the XPaths
    namespaces: dict[str, str] = Field(default_factory=dict)  # prefixes usable in XPaths ("ns" is bound)
    timeout_seconds: float = Field(10.0, gt=0)
    ws_security: WsSecurity | None = None
    header_token: HeaderToken | None = None
    encoding: str = "utf-8"
    channel_codes: dict[str, str] = Field(default_factory=dict)  # HIS code → gateway channel id
    bill_type_codes: dict[str, str] = Field(default_factory=dict)  # gateway bill type → HIS code
    functions: SoapFunctions

    @field_validator("endpoint")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _maps(self) -> SoapHisConfig:
        ids = list(self.channel_codes.values())
        dupes = {c for c in ids if ids.count(c) > 1}
        if dupes:
            raise ValueError(f"channel_codes maps several HIS codes to {', '.join(sorted(dupes))}")
        return self

    def xpath_namespaces(self) -> dict[str, str]:
        return {"ns": self.namespace, **self.namespaces}

    def action_for(self, fn: SoapFunction) -> str:
        if fn.soap_action is not None:
            return fn.soap_action
        if self.soap_action is not None:
            return self.soap_action
        return f"{self.namespace.rstrip('/')}/{fn.operation or self.operation}"

    def channel_code(self, channel: str) -> str:
        """The HIS's code for a gateway channel id (the id itself when unmapped)."""
        for code, gateway_id in self.channel_codes.items():
            if gateway_id == channel:
                return code
        return channel
