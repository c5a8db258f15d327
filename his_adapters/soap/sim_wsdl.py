"""The WSDL the simulated SOAP HIS serves at ``<endpoint>?wsdl``.

Document/literal wrapped, parameters unqualified (the default of many HIS
services' toolkits). Two operations share one port:

- ``HisService(tradeCode, inputXml) → HisServiceResult``: the inner ``<Request>``
  XML travels as an escaped string, the ``<Response>`` comes back the same way;
- ``HisInline(tradeCode, …fields)``: the request fields are the operation's own
  child elements, and ``HisInlineResponse`` carries the response fields likewise.
"""
from __future__ import annotations

from xml.sax.saxutils import quoteattr

NAMESPACE = "http://simhis.yinyi/soap"
OPERATION = "HisService"
INLINE_OPERATION = "HisInline"
RESULT_ELEMENT = "HisServiceResult"

_WSDL = """<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions name="HisService" targetNamespace={ns}
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns={ns}>
  <wsdl:types>
    <xsd:schema targetNamespace={ns} elementFormDefault="unqualified">
      <xsd:element name="HisService">
        <xsd:complexType><xsd:sequence>
          <xsd:element name="tradeCode" type="xsd:string"/>
          <xsd:element name="inputXml" type="xsd:string"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
      <xsd:element name="HisServiceResponse">
        <xsd:complexType><xsd:sequence>
          <xsd:element name="HisServiceResult" type="xsd:string"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
      <xsd:element name="HisInline">
        <xsd:complexType><xsd:sequence>
          <xsd:element name="tradeCode" type="xsd:string"/>
          <xsd:any processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
      <xsd:element name="HisInlineResponse">
        <xsd:complexType><xsd:sequence>
          <xsd:any processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence></xsd:complexType>
      </xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="HisServiceIn"><wsdl:part name="parameters" element="tns:HisService"/></wsdl:message>
  <wsdl:message name="HisServiceOut"><wsdl:part name="parameters" element="tns:HisServiceResponse"/></wsdl:message>
  <wsdl:message name="HisInlineIn"><wsdl:part name="parameters" element="tns:HisInline"/></wsdl:message>
  <wsdl:message name="HisInlineOut"><wsdl:part name="parameters" element="tns:HisInlineResponse"/></wsdl:message>
  <wsdl:portType name="HisServicePortType">
    <wsdl:operation name="HisService">
      <wsdl:input message="tns:HisServiceIn"/><wsdl:output message="tns:HisServiceOut"/>
    </wsdl:operation>
    <wsdl:operation name="HisInline">
      <wsdl:input message="tns:HisInlineIn"/><wsdl:output message="tns:HisInlineOut"/>
    </wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="HisServiceBinding" type="tns:HisServicePortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="HisService">
      <soap:operation soapAction={action} style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
    <wsdl:operation name="HisInline">
      <soap:operation soapAction={inline_action} style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="HisService">
    <wsdl:port name="HisServicePort" binding="tns:HisServiceBinding">
      <soap:address location={location}/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def wsdl(location: str) -> str:
    """The service description, with the endpoint address ``location``."""
    return _WSDL.format(ns=quoteattr(NAMESPACE), location=quoteattr(location),
                        action=quoteattr(f"{NAMESPACE}/{OPERATION}"),
                        inline_action=quoteattr(f"{NAMESPACE}/{INLINE_OPERATION}"))
