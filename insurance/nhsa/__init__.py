"""The national medical-insurance platform (国家医保信息平台) adapter, its regional
profiles and a simulator of the insurance centre. See ``docs/insurance/nhsa.md``."""
from __future__ import annotations

from .adapter import NhsaAdapter
from .config import NhsaConfig
from .profiles import PROFILES, RegionProfile, register_profile
from .security import ChannelSecurity, register_security

__all__ = ["PROFILES", "ChannelSecurity", "NhsaAdapter", "NhsaConfig", "RegionProfile", "register_profile",
           "register_security"]
