"""The adapter's wire: request envelopes out, answers in, failures classified.

``build_request`` renders a function's template and wraps it as the service wants
(an escaped inner-XML string, or the operation's own child elements);
``read_answer`` turns the HTTP answer into the root element the function's XPaths
start from, raising the core's exceptions for everything that is not an answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape as _escape

from lxml import etree

from gateway.errors import ConfigError, HisProtocolError, HisUnavailable
from gateway.mapping import MISSING

from .config import SoapFunction, SoapHisConfig
from .envelope import (CONTENT_TYPES, UnsafeXml, child, envelope, parse_xml, read_envelope,
                       strip_namespaces, to_bytes, username_token)


def xml_escape(text: str) -> str:
    return _escape(text, {'"': "&quot;", "'": "&apos;"})


@dataclass
class Answer:
    root: etree._Element  # where the function's XPaths start
    code: str
    message: str | None


def build_request(cfg: SoapHisConfig, name: str, fn: SoapFunction,
                  values: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The SOAP message and HTTP headers for one call of function ``name``."""
    try:
        text = fn.mapping.render(fn.template, values, escape=xml_escape)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"SOAP function {name}: template does not render: {exc}") from exc
    op = etree.Element(etree.QName(cfg.namespace, fn.operation or cfg.operation), nsmap={"ns": cfg.namespace})

    def param(local_name: str) -> etree._Element:
        tag = etree.QName(cfg.namespace, local_name) if cfg.qualified_parameters else local_name
        return etree.SubElement(op, tag)

    if cfg.trade_code_element and fn.trade_code is not None:
        param(cfg.trade_code_element).text = fn.trade_code
    try:
        if cfg.payload_style == "embedded":
            parse_xml(text)  # a template that renders to broken XML is a configuration error
            param(cfg.message_element).text = etree.CDATA(text) if cfg.cdata else text
        else:
            xmlns = f' xmlns="{xml_escape(cfg.namespace)}"' if cfg.qualified_parameters else ""
            wrapper = parse_xml(f"<w{xmlns}>{text}</w>")
            op.extend(list(wrapper))
    except UnsafeXml as exc:
        raise ConfigError(f"SOAP function {name}: template renders to bad XML: {exc}") from exc

    header: list[etree._Element] = []
    http_headers: dict[str, str] = {}
    if cfg.ws_security:
        sec = cfg.ws_security
        header.append(username_token(sec.username, sec.password.get_secret_value(), digest=sec.digest))
    token = cfg.header_token
    if token and token.location == "soap":
        el = etree.Element(etree.QName(token.namespace, token.name) if token.namespace else token.name)
        el.text = token.value.get_secret_value()
        header.append(el)
    elif token:
        http_headers[token.name] = token.value.get_secret_value()
    body = to_bytes(envelope(cfg.soap_version, [op], header), cfg.encoding)
    action = cfg.action_for(fn)
    content_type = f"{CONTENT_TYPES[cfg.soap_version]}; charset={cfg.encoding}"
    if cfg.soap_version == "1.1":
        http_headers["SOAPAction"] = f'"{action}"'
    elif action:
        content_type += f'; action="{action}"'
    http_headers["Content-Type"] = content_type
    return body, http_headers


def read_answer(cfg: SoapHisConfig, name: str, fn: SoapFunction, status: int, data: bytes) -> Answer:
    """Classify one HTTP answer; return the function's root, result code and message."""
    try:
        env = read_envelope(data)
    except UnsafeXml as exc:
        if status >= 500:
            raise HisUnavailable(f"{name}: HTTP {status} without a SOAP answer", http_status=status) from exc
        raise HisProtocolError(f"{name}: {exc}", http_status=status) from exc
    if env.fault is not None:
        f = env.fault
        text = f"{name}: SOAP fault {f.code}: {f.reason}" + (f" ({f.detail})" if f.detail else "")
        if f.server:
            raise HisUnavailable(text, fault_code=f.code, http_status=status)
        raise HisProtocolError(text, fault_code=f.code, http_status=status)
    if status >= 500:
        raise HisUnavailable(f"{name}: HTTP {status}", http_status=status)
    if status >= 300:
        raise HisProtocolError(f"{name}: HTTP {status}", http_status=status)
    payload = env.payload
    if payload is None:
        raise HisProtocolError(f"{name}: empty SOAP body")
    if cfg.payload_style == "embedded":
        holder = (child(payload, cfg.result_element) if cfg.result_element
                  else next((c for c in payload if isinstance(c.tag, str)), None))
        if holder is None:
            raise HisProtocolError(f"{name}: answer lacks {cfg.result_element or 'a result element'}")
        nested = next((c for c in holder if isinstance(c.tag, str)), None)
        if nested is not None:  # some services put the message in as elements, not as a string
            root = nested
        else:
            try:
                root = parse_xml("".join(holder.itertext()).strip())
            except UnsafeXml as exc:
                raise HisProtocolError(f"{name}: inner answer: {exc}") from exc
    else:
        root = payload
    if cfg.strip_namespaces:
        root = strip_namespaces(root)
    ns = cfg.xpath_namespaces()
    code = xpath_value(root, fn.result_code, ns)
    if code is MISSING or code == "":
        raise HisProtocolError(f"{name}: answer lacks its result code ({fn.result_code})")
    code = str(code)
    message = xpath_value(root, fn.message, ns) if fn.message else None
    return Answer(root, code, None if message is MISSING or message == "" else str(message))


def xpath_value(node: etree._Element, path: str, ns: dict[str, str]) -> Any:
    """The value of ``path`` from ``node``: text of the first match, or ``MISSING``."""
    try:
        res = node.xpath(path, namespaces=ns)
    except etree.XPathError as exc:
        raise HisProtocolError(f"XPath {path!r} fails: {exc}") from exc
    if isinstance(res, list):
        if not res:
            return MISSING
        res = res[0]
    if isinstance(res, etree._Element):
        return "".join(res.itertext()).strip()
    if isinstance(res, bool):
        return res
    if isinstance(res, float):
        if res != res:  # NaN: number() of something absent
            return MISSING
        return int(res) if res.is_integer() else repr(res)
    return str(res).strip()


def xpath_elements(node: etree._Element, path: str, ns: dict[str, str]) -> list[etree._Element]:
    try:
        res = node.xpath(path, namespaces=ns)
    except etree.XPathError as exc:
        raise HisProtocolError(f"XPath {path!r} fails: {exc}") from exc
    if not isinstance(res, list) or not all(isinstance(r, etree._Element) for r in res):
        raise HisProtocolError(f"XPath {path!r} does not select elements")
    return res


def raw_fields(el: etree._Element) -> dict[str, str]:
    """The record's leaf children as ``{local name: text}``, for ``raw``."""
    out: dict[str, str] = {}
    for c in el.iter():
        if c is el or not isinstance(c.tag, str) or len(c):
            continue
        out.setdefault(etree.QName(c).localname, (c.text or "").strip())
    return out
