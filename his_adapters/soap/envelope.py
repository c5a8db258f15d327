"""SOAP 1.1/1.2 envelopes: safe parsing, building, faults and WS-Security.

Shared by the adapter and the simulator. Parsing never resolves entities, never
loads a DTD and never touches the network; a document that carries a DOCTYPE at
all is refused, since SOAP forbids DTDs and an answer with one is either broken or
an attack (external entities, entity expansion).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from lxml import etree

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
SOAP_NS = {"1.1": SOAP11_NS, "1.2": SOAP12_NS}
CONTENT_TYPES = {"1.1": "text/xml", "1.2": "application/soap+xml"}
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = f"{_TOKEN_PROFILE}#PasswordText"
PASSWORD_DIGEST = f"{_TOKEN_PROFILE}#PasswordDigest"
NONCE_ENCODING = ("http://docs.oasis-open.org/wss/2004/01/"
                  "oasis-200401-wss-soap-message-security-1.0#Base64Binary")


class UnsafeXml(ValueError):
    """XML that does not parse, or that carries a DTD."""


def safe_parser() -> etree.XMLParser:
    # a fresh parser per call: lxml parsers are not safe to share across threads
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_blank_text=True)


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML; raise ``UnsafeXml`` if it is broken or declares a DTD."""
    if isinstance(data, str):
        # lxml refuses str with an encoding declaration; the text is already decoded
        data = data.encode("utf-8") if not data.lstrip().startswith("<?xml") else _drop_decl(data)
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc}") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXml("XML with a DOCTYPE (DTD or entity declarations) is refused")
    return root


def _drop_decl(text: str) -> bytes:
    end = text.find("?>")
    return text[end + 2:].encode("utf-8")


def local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child element whose local name is ``name``, whatever its namespace."""
    for c in el:
        if isinstance(c.tag, str) and local(c) == name:
            return c
    return None


def strip_namespaces(root: etree._Element) -> etree._Element:
    for el in root.iter():
        if isinstance(el.tag, str):
            el.tag = etree.QName(el).localname
        for key in list(el.attrib):
            if key.startswith("{"):
                el.attrib[etree.QName(key).localname] = el.attrib.pop(key)
    etree.cleanup_namespaces(root)
    return root


# --- building -------------------------------------------------------------------


def envelope(version: str, body_children: list[etree._Element],
             header_children: list[etree._Element] | None = None) -> etree._Element:
    ns = SOAP_NS[version]
    env = etree.Element(etree.QName(ns, "Envelope"), nsmap={"soap": ns})
    if header_children:
        header = etree.SubElement(env, etree.QName(ns, "Header"))
        header.extend(header_children)
    body = etree.SubElement(env, etree.QName(ns, "Body"))
    body.extend(body_children)
    return env


def to_bytes(el: etree._Element, encoding: str = "utf-8") -> bytes:
    return etree.tostring(el, xml_declaration=True, encoding=encoding)


def username_token(username: str, password: str, *, digest: bool,
                   now: dt.datetime | None = None) -> etree._Element:
    """A ``wsse:Security`` header element with a UsernameToken."""
    sec = etree.Element(etree.QName(WSSE_NS, "Security"), nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    token = etree.SubElement(sec, etree.QName(WSSE_NS, "UsernameToken"))
    etree.SubElement(token, etree.QName(WSSE_NS, "Username")).text = username
    pw = etree.SubElement(token, etree.QName(WSSE_NS, "Password"))
    if not digest:
        pw.set("Type", PASSWORD_TEXT)
        pw.text = password
        return sec
    nonce = secrets.token_bytes(16)
    created = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pw.set("Type", PASSWORD_DIGEST)
    pw.text = password_digest(nonce, created, password)
    n = etree.SubElement(token, etree.QName(WSSE_NS, "Nonce"))
    n.set("EncodingType", NONCE_ENCODING)
    n.text = base64.b64encode(nonce).decode()
    etree.SubElement(token, etree.QName(WSU_NS, "Created")).text = created
    return sec


def password_digest(nonce: bytes, created: str, password: str) -> str:
    raw = nonce + created.encode() + password.encode()
    return base64.b64encode(hashlib.sha1(raw).digest()).decode()  # the token profile mandates SHA-1


# --- reading --------------------------------------------------------------------


@dataclass
class Fault:
    """A SOAP Fault, in version-neutral terms."""

    server: bool  # Server/Receiver: the service broke; Client/Sender: it refused the message
    code: str
    reason: str
    detail: str | None = None


@dataclass
class Envelope:
    version: str
    header: etree._Element | None
    body: etree._Element
    fault: Fault | None

    @property
    def payload(self) -> etree._Element | None:
        """The body's first element (the operation or its response)."""
        return next((c for c in self.body if isinstance(c.tag, str)), None)


def read_envelope(data: bytes) -> Envelope:
    """Parse a SOAP message of either version; raise ``UnsafeXml`` if it is not one."""
    root = parse_xml(data)
    ns = etree.QName(root).namespace
    version = next((v for v, uri in SOAP_NS.items() if uri == ns), None)
    if version is None or local(root) != "Envelope":
        raise UnsafeXml(f"not a SOAP envelope: <{root.tag}>")
    header = root.find(f"{{{ns}}}Header")
    body = root.find(f"{{{ns}}}Body")
    if body is None:
        raise UnsafeXml("SOAP envelope without a Body")
    fault_el = body.find(f"{{{ns}}}Fault")
    fault = _read_fault(fault_el, version) if fault_el is not None else None
    return Envelope(version, header, body, fault)


def _read_fault(el: etree._Element, version: str) -> Fault:
    if version == "1.1":
        code = (el.findtext("faultcode") or "").strip()
        reason = (el.findtext("faultstring") or "").strip()
        detail_el = el.find("detail")
    else:
        ns = SOAP12_NS
        code = (el.findtext(f"{{{ns}}}Code/{{{ns}}}Value") or "").strip()
        reason = (el.findtext(f"{{{ns}}}Reason/{{{ns}}}Text") or "").strip()
        detail_el = el.find(f"{{{ns}}}Detail")
    name = code.rsplit(":", 1)[-1]
    detail = "".join(detail_el.itertext()).strip() if detail_el is not None else None
    # an unnamed fault code is treated as the service's own breakage: outcome unknown
    return Fault(server=name not in ("Client", "Sender", "VersionMismatch", "MustUnderstand"),
                 code=code, reason=reason, detail=detail or None)


def fault_envelope(version: str, *, server: bool, reason: str, detail: str | None = None) -> bytes:
    ns = SOAP_NS[version]
    fault = etree.Element(etree.QName(ns, "Fault"))
    if version == "1.1":
        etree.SubElement(fault, "faultcode").text = f"soap:{'Server' if server else 'Client'}"
        etree.SubElement(fault, "faultstring").text = reason
        if detail:
            etree.SubElement(fault, "detail").text = detail
    else:
        code = etree.SubElement(fault, etree.QName(ns, "Code"))
        etree.SubElement(code, etree.QName(ns, "Value")).text = f"soap:{'Receiver' if server else 'Sender'}"
        text = etree.SubElement(etree.SubElement(fault, etree.QName(ns, "Reason")), etree.QName(ns, "Text"))
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "zh")
        text.text = reason
        if detail:
            etree.SubElement(fault, etree.QName(ns, "Detail")).text = detail
    return to_bytes(envelope(version, [fault]))
