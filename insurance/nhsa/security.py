"""Channel security: the pluggable layer between the envelope and HTTP.

Regions protect the same envelope differently: nothing at all (national), OAuth
Bearer + SM2 signature + SM4 encryption (:mod:`.sec_sm`), gateway headers
(:mod:`.sec_tif`), HMAC headers. A style implements :class:`ChannelSecurity` and is
registered by name in :data:`SECURITY_STYLES`; a profile names the style it uses.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import aiohttp

from .wire import dumps

if TYPE_CHECKING:
    from .config import NhsaConfig
    from .profiles import RegionProfile


class SecurityError(Exception):
    """An answer that fails the channel's verification (bad signature, undecryptable)."""


class CredentialsRefused(Exception):
    """The platform refused the credentials (token grant failed)."""


@runtime_checkable
class ChannelSecurity(Protocol):
    """What a security style does to every call.

    - ``prepare``: obtain or refresh credentials (a token) before a call;
    - ``sign_request``: turn the envelope (``input`` still plain) into the JSON text
      to send and the headers to add (sign, encrypt);
    - ``verify_response``: check and open an answer, returning the envelope with a
      plain ``output``; raise :class:`SecurityError` when it does not verify;
    - ``invalidate``: forget credentials the platform refused (HTTP 401).
    """

    style: ClassVar[str]
    required_config: ClassVar[tuple[str, ...]]

    async def prepare(self, session: aiohttp.ClientSession, base_url: str, timeout: aiohttp.ClientTimeout) -> None: ...

    def sign_request(self, envelope: dict[str, Any]) -> tuple[str, dict[str, str]]: ...

    def verify_response(self, headers: Mapping[str, str], payload: dict[str, Any]) -> dict[str, Any]: ...

    def invalidate(self) -> None: ...


class PlainSecurity:
    """The national default: no signature (``cainfo`` empty), plain JSON."""

    style: ClassVar[str] = "plain"
    required_config: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: NhsaConfig, profile: RegionProfile) -> None:
        self.config = config

    async def prepare(self, session: aiohttp.ClientSession, base_url: str, timeout: aiohttp.ClientTimeout) -> None:
        return None

    def sign_request(self, envelope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        return dumps(envelope), {}

    def verify_response(self, headers: Mapping[str, str], payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def invalidate(self) -> None:
        return None


SecurityFactory = Callable[["NhsaConfig", "RegionProfile"], ChannelSecurity]
SECURITY_STYLES: dict[str, type] = {"plain": PlainSecurity}


def register_security(cls: type) -> None:
    """Register a security style class (``style``, ``required_config``, the protocol)."""
    SECURITY_STYLES[cls.style] = cls


def security_class(style: str) -> type:
    _load_bundled()
    try:
        return SECURITY_STYLES[style]
    except KeyError:
        raise ValueError(f"unknown security style {style!r}; known: {', '.join(sorted(SECURITY_STYLES))}") from None


def _load_bundled() -> None:
    from . import sec_sm, sec_tif  # noqa: F401  (they register themselves)
