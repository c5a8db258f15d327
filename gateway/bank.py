"""The contract between a channel and a bank adapter (银行适配器).

Some payment channels have no single public merchant API: the hospital reaches them
through a bank. e-CNY (数字人民币) is the main case. A hospital signs an acquiring
agreement with one *operating bank* (运营机构 or a bank it appoints) and talks to that
bank's own API. yinyi therefore splits such a channel in two:

- the **channel adapter** (``channels/ecny``, ``id="ecny"``) is what the core sees:
  capabilities, payment-code recognition, scheduling knobs;
- a **bank adapter** speaks one bank's wire protocol. The channel hands it every
  flow in the core's own types (``gateway.channel``) and passes the results back
  unchanged.

A merchant's configuration names the bank adapter by id and carries that bank's
credentials::

    {"bank": "refbank", "bank_config": {"merchant_id": "…", "private_key": "…", …}}

Bank adapters are plugins like any other. A distribution registers its class with
the ``yinyi_register_bank_adapters`` hook (``register.add_bank_adapter(cls)``); the
registry keys it by the class's ``id``. ``plugins/banks/refbank`` is a complete
reference implementation with a simulator; start from it when writing one for a
real bank.

Writing an e-CNY bank adapter
=============================

Subclass :class:`EcnyAcquirer` and set:

- ``id``: a short lower-case identifier, unique among bank adapters (the value of
  ``bank`` in merchant configurations), e.g. ``"icbc"``;
- ``name_zh`` / ``name_en``: the bank's name, for people;
- ``config_model``: a pydantic model of the bank's per-merchant settings. Declare
  every secret (private keys, API keys) as ``SecretStr`` so it never appears in a
  repr or a log, and load keys in validators so a bad PEM fails when the merchant
  is configured, not at the first payment;
- ``supports_qr``: ``True`` if the bank offers dynamic QR codes (主扫, merchant
  presents a code that the patient's wallet app scans). Then implement
  :meth:`EcnyAcquirer.precreate` and :meth:`EcnyAcquirer.close` too.

The constructor receives the validated configuration (a plain mapping is accepted
and validated against ``config_model``) and the gateway's shared
``aiohttp.ClientSession``. Do no I/O in the constructor and make no blocking calls
anywhere: use the session; if the bank ships a synchronous SDK, run it with
``asyncio.to_thread``.

The rules every method must follow are the core's rules for channels:

- amounts are integers in fen (分) in and out. Convert yuan strings on the wire
  only through ``gateway.money`` (``yuan_to_fen``/``fen_to_yuan``);
- **a decline is a result, not an exception**: a payment the bank proves was not
  made (insufficient balance, expired payment code, invalid code, a request the
  bank refused before acting) is ``PayResult(status=FAILED, error_code=<the bank's
  code>, error_message=<the bank's message>)``;
- **an unknown outcome is an exception, never FAILED**: a timeout raises
  ``UpstreamTimeout``; a refused or reset connection, a 5xx, a 429 or a "system
  busy / result unknown" code raises ``UpstreamUnavailable``; an answer whose
  signature does not verify, that does not parse, or that is about another
  merchant or order raises ``UpstreamProtocolError``. The core then records the
  payment as UNKNOWN and queries until the truth is known;
- **verify the bank's signature on every answer**, declines and errors included,
  before reading it: an unverifiable "declined" could hide a real charge;
- a trade status the adapter does not recognise maps to ``TradeStatus.PENDING``
  (never FAILED); an unknown refund status maps to ``RefundStatus.PROCESSING``;
- retry only idempotent reads (query, refund query, bill download) on connection
  errors; never retry a write on your own (the core decides, by querying).

Pass ``channel="ecny"`` and ``bank=<id>`` as extras when raising, so operators see
where an error came from.
"""
from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel

from .channel import (
    Bill,
    NotifyAnswer,
    NotifyEvent,
    PayRequest,
    PayResult,
    RefundRequest,
    RefundResult,
    ReverseResult,
)
from .errors import NotSupported

ECNY_CHANNEL = "ecny"


class BankAdapter(abc.ABC):
    """Base of every bank adapter registered with ``yinyi_register_bank_adapters``.

    Class attributes describe the bank; an instance serves one merchant. Subclasses
    add the flows of one kind of bank service; e-CNY acquiring is
    :class:`EcnyAcquirer`.
    """

    id: ClassVar[str]  # registry key and the ``bank`` value of merchant configurations
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]
    # The kind of service the adapter provides, so one registry can hold several
    # kinds (e-CNY acquiring, bank direct connection, POS bridges).
    kind: ClassVar[str] = "bank"

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, self.config_model):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = self.config_model.model_validate(raw)
        self.config = config
        self.session = session

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Facts about the adapter class, for listings and error messages."""
        return {"id": cls.id, "name_zh": cls.name_zh, "name_en": cls.name_en, "kind": cls.kind}


class EcnyAcquirer(BankAdapter):
    """One operating bank's e-CNY acquiring API (数字人民币收单), for one merchant.

    The e-CNY channel (``channels.ecny.EcnyChannel``) calls these methods; each
    mirrors a flow of ``gateway.channel.ChannelAdapter`` in the same core types.
    Required: :meth:`pay_code`, :meth:`query`, :meth:`reverse`, :meth:`refund`,
    :meth:`query_refund`, :meth:`parse_notify`, :meth:`download_bill`. With
    ``supports_qr = True`` also :meth:`precreate` and :meth:`close`.
    """

    kind: ClassVar[str] = "ecny_acquirer"
    supports_qr: ClassVar[bool] = False

    @property
    def qr_available(self) -> bool:
        """Whether *this merchant* can use dynamic QR codes.

        Defaults to the class's ``supports_qr``; override it when the bank offers
        QR codes but a merchant's contract may leave them out.
        """
        return self.supports_qr

    # --- payment code (付款码, the cashier scans the patient's wallet) ---------------
    @abc.abstractmethod
    async def pay_code(self, req: PayRequest) -> PayResult:
        """Charge the patient's e-CNY payment code ``req.auth_code`` (19 digits, ``01…``).

        ``req.out_trade_no`` is the gateway's order number: the bank must treat a
        second call with the same number as the same order (return its current
        state, or a code meaning "already paid" that the adapter answers by
        querying). Return:

        - ``SUCCEEDED`` with ``channel_trade_no`` (the bank's serial), ``paid_at``,
          ``paid_amount`` (fen) and ``payer_id`` (the masked wallet id) when paid;
        - ``PAYING`` while the patient confirms in the wallet app (above the
          password-free limit) or the bank is still waiting for the e-CNY system;
          the core then queries on ``EcnyChannel.code_poll_schedule`` and finally
          reverses;
        - ``FAILED`` with the bank's ``error_code``/``error_message`` when the bank
          proves nothing was charged.

        Raise ``Upstream*`` when the outcome is unknown.
        """

    @abc.abstractmethod
    async def query(self, out_trade_no: str) -> PayResult:
        """The bank's view of an order. ``NOT_FOUND`` if the bank has never seen it.

        Map the bank's statuses: paid → SUCCEEDED, paid then (partly) refunded →
        REFUNDED, confirming → PAYING, created and unpaid (QR) → PENDING, closed →
        CLOSED, revoked → REVERSED, proven failed → FAILED; anything else → PENDING.
        """

    @abc.abstractmethod
    async def reverse(self, out_trade_no: str) -> ReverseResult:
        """Revoke a payment-code order (撤销): stop a pending charge or give the money back.

        ``ReverseResult(done=True)`` once the bank confirms no money is kept (an
        order the bank has never seen counts as done). ``done=False, retry=True``
        when the bank asks to try later (still processing); ``done=False,
        retry=False`` when the bank refuses for good (already refunded, past the
        revoke window), with its code. Raise ``Upstream*`` when unknown.
        """

    # --- dynamic QR (主扫), optional ---------------------------------------------
    async def precreate(self, req: PayRequest) -> PayResult:
        """Create an order the patient pays by scanning ``code_url`` (``supports_qr``).

        Return ``PENDING`` with ``code_url`` (the content of the QR code). The
        outcome arrives by notify (``req.notify_url``) or by :meth:`query`. A
        second call with the same ``out_trade_no`` and amount returns the same
        order; if that order is already paid, return the :meth:`query` result.
        """
        raise NotSupported("pay:qr", ECNY_CHANNEL)

    async def close(self, out_trade_no: str) -> None:
        """Close an unpaid QR order (关单). Closed or unknown orders are fine.

        Raise ``gateway.errors.InvalidState`` if the order is already paid.
        """
        raise NotSupported("close", ECNY_CHANNEL)

    # --- refunds ------------------------------------------------------------------
    @abc.abstractmethod
    async def refund(self, req: RefundRequest) -> RefundResult:
        """Refund ``req.amount`` fen of a paid order (partial refunds allowed).

        ``req.out_refund_no`` identifies the refund: a repeat with the same number
        is the same refund. Return ``PROCESSING`` or ``SUCCEEDED`` (with
        ``channel_refund_no``) when accepted; ``FAILED`` with the bank's code when
        the bank refuses (amount exceeds the refundable amount, order not paid…).
        """

    @abc.abstractmethod
    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        """The bank's view of a refund; a refund the bank has never seen is FAILED."""

    # --- callbacks -----------------------------------------------------------------
    @abc.abstractmethod
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        """Verify and decode a bank callback (payment success, refund result).

        Raise ``gateway.errors.NotifyRejected`` unless the bank's signature holds
        and the callback is about this merchant. Return the event and the answer
        the bank expects for "received".
        """

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        """The answer that makes the bank send its callback again later."""
        return NotifyAnswer(status=500, body=b'{"code":"FAIL","message":"' + message.encode() + b'"}')

    # --- reconciliation ------------------------------------------------------------
    @abc.abstractmethod
    async def download_bill(self, bill_date: dt.date) -> Bill:
        """Download and parse the bank's reconciliation file (对账文件) of ``bill_date``.

        Payment lines carry positive amounts, refund and revoke lines negative
        ones (fen). Check the file against its own totals and raise
        ``UpstreamProtocolError`` if it does not add up; raise
        ``UpstreamUnavailable`` if the bank has not produced it yet.
        """


def is_ecny_acquirer(cls: object) -> bool:
    """Whether ``cls`` is a complete (instantiable) e-CNY bank adapter class."""
    try:
        check_ecny_acquirer(cls)
    except TypeError:
        return False
    return True


def check_ecny_acquirer(cls: object) -> type[EcnyAcquirer]:
    """Return ``cls`` if it is a usable e-CNY bank adapter class; raise ``TypeError`` saying why not."""
    if not (isinstance(cls, type) and issubclass(cls, EcnyAcquirer)):
        raise TypeError(f"{cls!r} is not an EcnyAcquirer subclass")
    missing = sorted(getattr(cls, "__abstractmethods__", ()) or ())
    if missing:
        raise TypeError(f"bank adapter {cls.__name__} does not implement {', '.join(missing)}")
    for attr in ("id", "name_zh", "name_en"):
        if not (isinstance(getattr(cls, attr, None), str) and getattr(cls, attr)):
            raise TypeError(f"bank adapter {cls.__name__} lacks a string {attr!r}")
    model = getattr(cls, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"bank adapter {cls.__name__} lacks a pydantic config_model")
    return cls


__all__ = ["ECNY_CHANNEL", "BankAdapter", "EcnyAcquirer", "check_ecny_acquirer", "is_ecny_acquirer"]
