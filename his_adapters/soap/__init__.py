"""SOAP/XML web-service business-system adapter (SOAP 接口 HIS), its simulator and config."""
from __future__ import annotations

from .adapter import SoapHisAdapter
from .config import HeaderToken, SoapFunction, SoapFunctions, SoapHisConfig, WsSecurity

__all__ = ["HeaderToken", "SoapFunction", "SoapFunctions", "SoapHisAdapter", "SoapHisConfig", "WsSecurity"]
