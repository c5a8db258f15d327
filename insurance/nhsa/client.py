"""Transport: envelope, channel security, sign-in, and the mapping of failures.

- ``infcode = 0`` → the output; ``infcode = -1`` → :class:`InsuranceRejected` (or a
  subclass the region's patterns pick), except an ``err_msg`` the region marks as
  a system error, which is an unknown outcome;
- timeout → ``InsuranceTimeout``; refused/reset connection, 5xx, other non-2xx →
  ``InsuranceUnavailable``; unparseable or badly signed answer → ``InsuranceProtocolError``.
Every exception carries ``infno`` and ``msgid`` (and ``psn_no`` when known).

A refused ``sign_no`` triggers one new sign-in and one resend under a new msgid;
an HTTP 401 (token expired) one new token and one resend. Nothing else is retried.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from gateway.errors import (
    InsuranceAlreadyReversed,
    InsuranceBalanceInsufficient,
    InsurancePasswordFailed,
    InsuranceProtocolError,
    InsuranceRejected,
    InsuranceTimeout,
    InsuranceUnavailable,
)
from gateway.insurance import SignIn, take_planned_msgid
from gateway.money import MoneyFormatError

from .config import NhsaConfig
from .msg_person import SignInInput, SignInOutput
from .msgid import generator_for
from .security import ChannelSecurity, CredentialsRefused, SecurityError, security_class
from .wire import RequestEnvelope, ResponseEnvelope, WireFormatError, format_time, loads

M = TypeVar("M", bound=BaseModel)
NO_SIGN_IN = ("9001", "9002")


@dataclass(frozen=True)
class Answer:
    infno: str
    msgid: str
    output: Any = None
    warn_msg: str | None = None
    raw: bytes | None = None  # 9102: the file itself


class _SignNoRefused(Exception):
    def __init__(self, rejected: InsuranceRejected) -> None:
        self.rejected = rejected


class _AuthRefused(Exception):
    pass


class NhsaClient:
    def __init__(self, config: NhsaConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.profile = config.profile
        self.session = session
        self.security: ChannelSecurity = security_class(self.profile.security)(config, self.profile)
        self.msgids = generator_for(config.fixmedins_code)
        self.timeout = aiohttp.ClientTimeout(total=config.timeout_seconds,
                                             sock_connect=config.connect_timeout_seconds)
        self._sign: SignIn | None = None
        self._signed_at = 0.0
        self._sign_lock = asyncio.Lock()
        self.sign_in_count = 0  # how many 9001 calls this client made

    # --- sign-in -----------------------------------------------------------------------
    @property
    def sign_no(self) -> str | None:
        return self._sign.sign_no if self._sign else None

    async def sign_in(self) -> SignIn:
        cfg = self.config
        body = {"signIn": SignInInput(opter_no=cfg.opter, mac=cfg.mac, ip=cfg.ip).wire()}
        answer = await self.call("9001", body)
        out = self.parse(SignInOutput, (answer.output or {}).get("signinoutb"), answer)
        self._sign = SignIn(sign_no=out.sign_no, sign_time=out.sign_time or dt.datetime.now(dt.UTC))
        self._signed_at = time.monotonic()
        self.sign_in_count += 1
        return self._sign

    async def ensure_signed_in(self) -> None:
        if self._sign and time.monotonic() - self._signed_at < self.config.sign_in_ttl_seconds:
            return
        async with self._sign_lock:
            if self._sign and time.monotonic() - self._signed_at < self.config.sign_in_ttl_seconds:
                return
            await self.sign_in()

    def forget_sign_in(self, stale: str | None = None) -> None:
        if stale is None or self.sign_no == stale:
            self._sign = None

    # --- calls -------------------------------------------------------------------------
    async def call(self, infno: str, input_body: Any, *, psn_no: str | None = None,
                   insuplc_admdvs: str = "", insutype: str | None = None, binary: bool = False) -> Answer:
        sign_retry = auth_retry = True
        while True:
            if infno not in NO_SIGN_IN:
                await self.ensure_signed_in()
            used_sign = self.sign_no or ""
            planned = take_planned_msgid() if infno not in NO_SIGN_IN else None
            msgid = planned or self.msgids.next()
            try:
                return await self._send(infno, msgid, input_body, psn_no=psn_no, insuplc_admdvs=insuplc_admdvs,
                                        insutype=insutype, sign_no=used_sign, binary=binary)
            except _SignNoRefused as refused:
                if not sign_retry:
                    raise refused.rejected from None
                sign_retry = False
                self.forget_sign_in(used_sign)
            except _AuthRefused:
                if not auth_retry:
                    raise InsuranceRejected("the platform refused the access token twice", infno=infno,
                                            msgid=msgid, channel="nhsa") from None
                auth_retry = False
                self.security.invalidate()

    def envelope(self, infno: str, msgid: str, input_body: Any, *, insuplc_admdvs: str, insutype: str | None,
                 sign_no: str) -> dict[str, Any]:
        cfg = self.config
        env = RequestEnvelope(
            infno=infno, msgid=msgid, mdtrtarea_admvs=cfg.mdtrtarea_admvs, insuplc_admdvs=insuplc_admdvs,
            recer_sys_code=self.profile.recer_sys_code(insutype, cfg.recer_sys_code), dev_no=cfg.dev_no,
            dev_safe_info=cfg.dev_safe_info, infver=cfg.infver, opter_type=cfg.opter_type, opter=cfg.opter,
            opter_name=cfg.opter_name, inf_time=format_time(dt.datetime.now(dt.UTC)),
            fixmedins_code=cfg.fixmedins_code, fixmedins_name=cfg.fixmedins_name, sign_no=sign_no,
        ).wire()
        env["input"] = input_body
        return env

    async def _send(self, infno: str, msgid: str, input_body: Any, *, psn_no: str | None, insuplc_admdvs: str,
                    insutype: str | None, sign_no: str, binary: bool) -> Answer:
        ctx = {"infno": infno, "msgid": msgid, "channel": "nhsa", **({"psn_no": psn_no} if psn_no else {})}
        env = self.envelope(infno, msgid, input_body, insuplc_admdvs=insuplc_admdvs, insutype=insutype,
                            sign_no=sign_no)
        url = self.config.base_url + self.profile.call_path(infno)
        try:
            await self.security.prepare(self.session, self.config.base_url, self.timeout)
            text, headers = self.security.sign_request(env)
            async with self.session.post(url, data=text.encode("utf-8"), timeout=self.timeout,
                                         headers={**headers, "Content-Type": "application/json;charset=UTF-8"}
                                         ) as resp:
                raw = await resp.read()
                status, ctype = resp.status, resp.content_type
                resp_headers = dict(resp.headers)
        except CredentialsRefused as exc:
            raise InsuranceRejected(str(exc), **ctx) from exc
        except SecurityError as exc:
            raise InsuranceProtocolError(str(exc), **ctx) from exc
        except TimeoutError as exc:
            raise InsuranceTimeout(f"{infno} timed out after {self.config.timeout_seconds}s", **ctx) from exc
        except aiohttp.ClientError as exc:
            raise InsuranceUnavailable(f"{infno}: {type(exc).__name__}: {exc}", **ctx) from exc
        if status == 401:
            raise _AuthRefused()
        if status >= 300:
            raise InsuranceUnavailable(f"{infno}: HTTP {status}", **ctx)
        if binary and ctype != "application/json":
            return Answer(infno, msgid, raw=raw)
        try:
            payload = loads(raw)
            if not isinstance(payload, dict):
                raise ValueError("answer is not a JSON object")
            payload = self.security.verify_response(resp_headers, payload)
            answer = ResponseEnvelope.model_validate(payload)
        except SecurityError as exc:
            raise InsuranceProtocolError(f"{infno}: {exc}", **ctx) from exc
        except (ValueError, ValidationError) as exc:
            raise InsuranceProtocolError(f"{infno}: unparseable answer: {exc}", **ctx) from exc
        if answer.ok:
            return Answer(infno, msgid, output=answer.output, warn_msg=answer.warn_msg or None)
        if answer.infcode != "-1" and not answer.err_msg:
            raise InsuranceProtocolError(f"{infno}: infcode {answer.infcode} without err_msg", **ctx)
        rejected = self.rejection(answer.err_msg or "", ctx)
        if infno not in NO_SIGN_IN and self.profile.errors.matches("sign_no", answer.err_msg):
            raise _SignNoRefused(rejected)
        raise rejected

    def rejection(self, err_msg: str, ctx: dict[str, Any]) -> InsuranceRejected | InsuranceUnavailable:
        patterns = self.profile.errors
        if patterns.matches("system", err_msg):
            return InsuranceUnavailable(err_msg, **ctx)
        for kind, cls in (("password", InsurancePasswordFailed), ("balance", InsuranceBalanceInsufficient),
                          ("already_reversed", InsuranceAlreadyReversed)):
            if patterns.matches(kind, err_msg):
                return cls(err_msg, **ctx)
        return InsuranceRejected(err_msg, **ctx)

    @staticmethod
    def parse(model: type[M], data: Any, answer: Answer) -> M:
        """Validate an output part; a malformed one is an unknown outcome."""
        try:
            return model.model_validate(data if data is not None else {})
        except (ValidationError, WireFormatError, MoneyFormatError) as exc:
            raise InsuranceProtocolError(f"{answer.infno}: malformed output: {exc}", infno=answer.infno,
                                         msgid=answer.msgid, channel="nhsa") from exc
