"""The channel conformance kit: the whole ``ChannelAdapter`` contract, run against a
channel's own simulator over real HTTP.

A channel package (bundled or third-party) uses it in a few lines::

    # tests/test_conformance.py of the package
    import pytest
    from gateway.testing.conformance import ChannelConformance, ChannelUnderTest
    from mybank_pay.adapter import MyBankChannel
    from mybank_pay.simulator import start_simulator
    from mybank_pay.conformance import MyBankDriver

    class TestMyBankConformance(ChannelConformance):
        @pytest.fixture
        def channel_under_test(self):
            return ChannelUnderTest(MyBankChannel, start_simulator, MyBankDriver)

Every test is skipped only where the channel does not declare the capability it
needs; everything it declares is exercised: payments by each method, idempotent
retries, declines, unknown outcomes (timeouts, 5xx, bad signatures never become
FAILED), reverse, close, full and partial refunds, refunds beyond the paid amount,
verified notifies (forged ones rejected), and the bill against its own totals.

The driver (a ``SimulatorDriver``) is the channel's small translation of the
kit's requests into its simulator's control surface.
"""
from __future__ import annotations

import abc
import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from ..channel import (Capability, ChannelAdapter, Method, NotifyKind, PayRequest, PayResult, RefundRequest,
                       RefundStatus, TradeStatus)
from ..errors import NotifyRejected, UpstreamError, YinyiError
from ..services.payments import new_id

PAID = (TradeStatus.SUCCEEDED, TradeStatus.REFUNDED)


class SimulatorDriver(abc.ABC):
    """How the kit drives one channel's simulator (patient, scripts, faults, truth)."""

    def __init__(self, handle: Any, session: aiohttp.ClientSession) -> None:
        self.handle = handle
        self.session = session

    @abc.abstractmethod
    def auth_code(self, outcome: str) -> str:
        """A payment code whose payment ends as ``outcome``: "success", "decline",
        "paying_then_success" (patient confirming, paid within seconds) or
        "paying_forever" (still confirming until reversed)."""

    @abc.abstractmethod
    async def confirm(self, out_trade_no: str) -> None:
        """The patient pays an open QR/JSAPI/H5 order."""

    @abc.abstractmethod
    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        """Break calls of ``op`` ("pay", "query", "refund", "reverse", "close") with
        ``kind`` ("timeout", "http_error", "reset", "bad_signature"), ``before`` or
        ``after`` the simulated upstream acts: the next ``count`` of them (None: no
        limit), each with probability ``rate``."""

    @abc.abstractmethod
    async def clear_faults(self) -> None: ...

    @abc.abstractmethod
    async def truth(self, out_trade_no: str) -> TradeStatus:
        """The simulator's own state of an order, in core terms (NOT_FOUND if absent)."""

    def bill_date(self, moment: dt.datetime) -> dt.date:
        """The bill (settlement) day a trade made at ``moment`` is listed on: the China date by
        default; a channel whose day closes earlier (UnionPay's 23:00 清算日) says so."""
        return moment.astimezone(dt.timezone(dt.timedelta(hours=8))).date()


@dataclass
class ChannelUnderTest:
    adapter: type[ChannelAdapter]
    start_simulator: Callable[..., Awaitable[Any]]
    driver: type[SimulatorDriver]
    # seconds an adapter call may take before the kit's timeouts count it unknown
    client_timeout: float = 2.0


@dataclass
class Rig:
    adapter: ChannelAdapter
    driver: SimulatorDriver
    notify_url: str
    notifies: asyncio.Queue[tuple[dict[str, str], bytes]]
    cls: type[ChannelAdapter]

    def pay_request(self, method: Method, amount: int = 1000, **kw: Any) -> PayRequest:
        base: dict[str, Any] = {"out_trade_no": new_id("K"), "amount": amount, "subject": "conformance",
                                "method": method, "notify_url": self.notify_url}
        if method == Method.JSAPI:
            base["openid"] = kw.pop("openid", "oConformanceOpenId0000000000")
        base.update(kw)
        return PayRequest(**base)

    async def settle(self, out_trade_no: str, want: tuple[TradeStatus, ...], timeout: float = 20.0) -> PayResult:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.adapter.query(out_trade_no)
            if r.status in want:
                return r
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{out_trade_no}: still {r.status} after {timeout}s, wanted {want}")
            await asyncio.sleep(0.5)

    async def paid_order(self, amount: int = 1000) -> PayRequest:
        """A paid order by the channel's cheapest method."""
        if self.cls.supports(Capability.CODE):
            req = self.pay_request(Method.CODE, amount, auth_code=self.driver.auth_code("success"))
            r = await self.adapter.pay(req)
            if r.status not in PAID:
                await self.settle(req.out_trade_no, PAID)
            return req
        method = next(m for m in (Method.QR, Method.H5, Method.JSAPI) if self.cls.supports(Capability(m.value)))
        req = self.pay_request(method, amount)
        await self.adapter.pay(req)
        await self.driver.confirm(req.out_trade_no)
        await self.settle(req.out_trade_no, PAID)
        return req


def _tamper(body: bytes, out_trade_no: str) -> bytes:
    """Change one character of a notify body and keep it well-formed, so only a
    signature check (or an AEAD tag) can tell."""
    key = out_trade_no.encode()
    if key in body:
        swapped = key[:-1] + (b"0" if key[-1:] != b"0" else b"1")
        return body.replace(key, swapped, 1)
    for i in range(len(body) // 3, len(body)):
        ch = body[i:i + 1]
        if ch.isalnum():
            return body[:i] + (b"A" if ch != b"A" else b"B") + body[i + 1:]
    raise AssertionError("notify body has nothing to tamper with")


def _needs(rig: Rig, *caps: Capability) -> None:
    missing = [c.value for c in caps if not rig.cls.supports(c)]
    if missing:
        pytest.skip(f"{rig.cls.id} does not declare {', '.join(missing)}")


class ChannelConformance:
    """Subclass in a test module and provide the ``channel_under_test`` fixture."""

    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:  # pragma: no cover - overridden
        raise NotImplementedError("provide a channel_under_test fixture returning ChannelUnderTest")

    @pytest.fixture
    async def rig(self, channel_under_test: ChannelUnderTest) -> AsyncIterator[Rig]:
        cut = channel_under_test
        queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
        adapter_holder: dict[str, ChannelAdapter] = {}

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            queue.put_nowait((dict(request.headers), body))
            try:
                _, answer = await adapter_holder["a"].parse_notify(request.headers, body)
            except NotifyRejected:
                return web.Response(status=400)
            return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)

        app = web.Application()
        app.router.add_post("/notify", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        handle = await cut.start_simulator("127.0.0.1", 0)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=cut.client_timeout))
        control = aiohttp.ClientSession()
        try:
            raw = dict(handle.merchant_configs()[0])
            if "timeout_seconds" in cut.adapter.config_model.model_fields:
                raw["timeout_seconds"] = cut.client_timeout  # drivers' timeouts hold answers longer than this
            config = cut.adapter.config_model.model_validate(raw)
            adapter = cut.adapter(config, session)
            adapter_holder["a"] = adapter
            yield Rig(adapter=adapter, driver=cut.driver(handle, control), notify_url=f"http://127.0.0.1:{port}/notify",
                      notifies=queue, cls=cut.adapter)
        finally:
            await session.close()
            await control.close()
            await handle.stop()
            await runner.cleanup()

    # --- declaration ---------------------------------------------------------------------
    def test_declares_its_contract(self, channel_under_test: ChannelUnderTest) -> None:
        cls = channel_under_test.adapter
        assert cls.id and cls.name_zh and cls.name_en
        assert cls.capabilities and set(cls.capabilities) <= set(Capability)
        if Capability.PARTIAL_REFUND in cls.capabilities:
            assert Capability.REFUND in cls.capabilities
        if Capability.CODE in cls.capabilities:
            assert cls.auth_code_pattern is not None and cls.auth_code_hint
            assert list(cls.code_poll_schedule) == sorted(cls.code_poll_schedule)
        for name, field in cls.config_model.model_fields.items():
            if any(word in name.lower() for word in ("private_key", "secret", "api_key", "apiv3", "password")):
                assert "SecretStr" in repr(field.annotation), f"{name} must be a SecretStr"

    async def test_secrets_never_reach_repr(self, rig: Rig) -> None:
        text = repr(rig.adapter.config) + str(rig.adapter.config.model_dump())
        assert "PRIVATE KEY" not in text
        for value in rig.adapter.config.__dict__.values():
            if isinstance(value, SecretStr):
                assert value.get_secret_value() not in text

    # --- payment code ------------------------------------------------------------------
    async def test_code_success(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE)
        code = rig.driver.auth_code("success")
        assert rig.cls.matches_auth_code(code)
        req = rig.pay_request(Method.CODE, auth_code=code)
        r = await rig.adapter.pay(req)
        if r.status not in PAID:
            assert r.status in (TradeStatus.PAYING, TradeStatus.PENDING)
            r = await rig.settle(req.out_trade_no, PAID)
        assert r.channel_trade_no
        assert await rig.driver.truth(req.out_trade_no) in PAID

    async def test_code_retry_is_idempotent(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE)
        req = rig.pay_request(Method.CODE, auth_code=rig.driver.auth_code("success"))
        first = await rig.adapter.pay(req)
        try:
            second = await rig.adapter.pay(req)
            assert second.status in (*PAID, TradeStatus.PAYING, TradeStatus.PENDING), second
        except YinyiError as exc:  # a clear refusal of the duplicate is fine; a second charge is not
            assert not isinstance(exc, UpstreamError), exc
            second = None
        r = await rig.settle(req.out_trade_no, PAID)
        assert r.channel_trade_no
        if second is not None and second.channel_trade_no and first.channel_trade_no:
            assert second.channel_trade_no == first.channel_trade_no

    async def test_code_decline_is_a_result_not_an_error(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE)
        req = rig.pay_request(Method.CODE, auth_code=rig.driver.auth_code("decline"))
        r = await rig.adapter.pay(req)
        if r.status in (TradeStatus.PAYING, TradeStatus.PENDING):  # channels that decline asynchronously
            r = await rig.settle(req.out_trade_no, (TradeStatus.FAILED,))
        assert r.status == TradeStatus.FAILED and r.error_code
        assert await rig.driver.truth(req.out_trade_no) in (TradeStatus.FAILED, TradeStatus.NOT_FOUND,
                                                            TradeStatus.CLOSED)

    async def test_code_paying_then_success(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE)
        req = rig.pay_request(Method.CODE, auth_code=rig.driver.auth_code("paying_then_success"))
        r = await rig.adapter.pay(req)
        assert r.status in (TradeStatus.PAYING, TradeStatus.PENDING, *PAID)
        await rig.settle(req.out_trade_no, PAID, timeout=30)

    async def test_reverse(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE, Capability.REVERSE)
        req = await rig.paid_order()
        res = await rig.adapter.reverse(req.out_trade_no)
        for _ in range(20):
            if res.done:
                break
            assert res.retry, res
            await asyncio.sleep(0.5)
            res = await rig.adapter.reverse(req.out_trade_no)
        assert res.done
        assert (await rig.adapter.query(req.out_trade_no)).status in (TradeStatus.REVERSED, TradeStatus.CLOSED,
                                                                     TradeStatus.REFUNDED)
        assert await rig.driver.truth(req.out_trade_no) in (TradeStatus.REVERSED, TradeStatus.CLOSED,
                                                            TradeStatus.REFUNDED)

    # --- unknown outcomes -----------------------------------------------------------------
    @pytest.mark.parametrize("kind,when", [("timeout", "after"), ("http_error", "before"), ("reset", "after"),
                                           ("bad_signature", "after")])
    async def test_broken_call_is_unknown_never_failed(self, rig: Rig, kind: str, when: str) -> None:
        method = Method.CODE if rig.cls.supports(Capability.CODE) else Method.QR
        _needs(rig, Capability(method.value))
        kw = {"auth_code": rig.driver.auth_code("success")} if method == Method.CODE else {}
        req = rig.pay_request(method, **kw)
        await rig.driver.inject(kind, "pay", when=when)
        with pytest.raises(UpstreamError):
            await asyncio.wait_for(rig.adapter.pay(req), 15)
        await rig.driver.clear_faults()
        truth = await rig.driver.truth(req.out_trade_no)
        r = await rig.adapter.query(req.out_trade_no)
        if when == "after" and method == Method.CODE:
            await rig.settle(req.out_trade_no, PAID)  # it was charged: the query must say so
        else:
            assert r.status == truth or (r.status in PAID and truth in PAID)

    @pytest.mark.parametrize("kind", ["timeout", "http_error", "bad_signature"])
    async def test_broken_query_is_unknown(self, rig: Rig, kind: str) -> None:
        req = await rig.paid_order()
        await rig.driver.inject(kind, "query", count=None)  # every query: adapters may retry safe reads
        with pytest.raises(UpstreamError):
            await asyncio.wait_for(rig.adapter.query(req.out_trade_no), 30)
        await rig.driver.clear_faults()
        assert (await rig.adapter.query(req.out_trade_no)).status in PAID

    @pytest.mark.parametrize("kind,when", [("timeout", "after"), ("http_error", "before"), ("bad_signature", "after")])
    async def test_broken_refund_is_unknown_never_failed(self, rig: Rig, kind: str, when: str) -> None:
        _needs(rig, Capability.REFUND)
        pay = await rig.paid_order(1000)
        req = RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no=new_id("Q"), amount=1000, total=1000,
                            notify_url=rig.notify_url)
        await rig.driver.inject(kind, "refund", when=when)
        with pytest.raises(UpstreamError):
            await asyncio.wait_for(rig.adapter.refund(req), 15)
        await rig.driver.clear_faults()
        # The same refund number retried settles it without refunding twice.
        assert await self._refund_done(rig, req) == RefundStatus.SUCCEEDED

    async def test_reverse_while_the_patient_is_still_confirming(self, rig: Rig) -> None:
        _needs(rig, Capability.CODE, Capability.REVERSE)
        req = rig.pay_request(Method.CODE, auth_code=rig.driver.auth_code("paying_forever"))
        r = await rig.adapter.pay(req)
        assert r.status in (TradeStatus.PAYING, TradeStatus.PENDING)
        res = await rig.adapter.reverse(req.out_trade_no)
        assert res.done or res.retry, res  # revoked, or the channel asks to try again later
        if res.done:
            assert await rig.driver.truth(req.out_trade_no) not in PAID
        else:
            assert (await rig.adapter.query(req.out_trade_no)).status in (TradeStatus.PAYING, TradeStatus.PENDING)

    async def test_query_of_unknown_order_is_not_found(self, rig: Rig) -> None:
        r = await rig.adapter.query(new_id("K"))
        assert r.status == TradeStatus.NOT_FOUND

    # --- QR / JSAPI / H5, close, notify -----------------------------------------------------
    @pytest.mark.parametrize("method", [Method.QR, Method.JSAPI, Method.H5])
    async def test_order_methods(self, rig: Rig, method: Method) -> None:
        _needs(rig, Capability(method.value))
        req = rig.pay_request(method)
        r = await rig.adapter.pay(req)
        assert r.status in (TradeStatus.PENDING, TradeStatus.PAYING)
        if method == Method.QR:
            assert r.code_url
        if method == Method.H5:
            assert r.h5_url
        if method == Method.JSAPI:
            assert r.jsapi_params
        await rig.driver.confirm(req.out_trade_no)
        await rig.settle(req.out_trade_no, PAID)

    async def test_notify_verified_and_forgery_rejected(self, rig: Rig) -> None:
        method = next((m for m in (Method.QR, Method.H5, Method.JSAPI, Method.CODE)
                       if rig.cls.supports(Capability(m.value))), None)
        if method is None:
            pytest.skip("no payment method")
        req = await rig.paid_order() if method == Method.CODE else rig.pay_request(method)
        if method != Method.CODE:
            await rig.adapter.pay(req)
            await rig.driver.confirm(req.out_trade_no)
        try:
            headers, body = await asyncio.wait_for(rig.notifies.get(), 15)
        except TimeoutError:
            pytest.skip(f"{rig.cls.id} sends no payment notify for {method.value}")
        event, answer = await rig.adapter.parse_notify(headers, body)
        assert event.kind == NotifyKind.PAYMENT and event.out_trade_no == req.out_trade_no
        assert event.trade is not None and event.trade.status in PAID and 200 <= answer.status < 300
        with pytest.raises(NotifyRejected):
            await rig.adapter.parse_notify(headers, _tamper(body, req.out_trade_no))

    async def test_close(self, rig: Rig) -> None:
        _needs(rig, Capability.CLOSE)
        method = next((m for m in (Method.QR, Method.H5, Method.JSAPI) if rig.cls.supports(Capability(m.value))), None)
        if method is None:
            pytest.skip("close without an order method")
        req = rig.pay_request(method)
        await rig.adapter.pay(req)
        await rig.adapter.close(req.out_trade_no)
        r = await rig.adapter.query(req.out_trade_no)
        assert r.status in (TradeStatus.CLOSED, TradeStatus.NOT_FOUND)

    # --- refunds ----------------------------------------------------------------------
    async def _refund_done(self, rig: Rig, req: RefundRequest) -> RefundStatus:
        r = await rig.adapter.refund(req)
        for _ in range(40):
            if r.status != RefundStatus.PROCESSING:
                return r.status
            await asyncio.sleep(0.5)
            r = await rig.adapter.query_refund(req.out_refund_no, req.out_trade_no)
        return r.status

    async def test_full_refund(self, rig: Rig) -> None:
        _needs(rig, Capability.REFUND)
        pay = await rig.paid_order(1000)
        rr = RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no=new_id("Q"), amount=1000,
                           total=1000, reason="conformance", notify_url=rig.notify_url)
        assert await self._refund_done(rig, rr) == RefundStatus.SUCCEEDED

    async def test_partial_refunds_and_beyond_paid(self, rig: Rig) -> None:
        _needs(rig, Capability.PARTIAL_REFUND)
        pay = await rig.paid_order(1000)

        def rr(amount: int) -> RefundRequest:
            return RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no=new_id("Q"),
                                 amount=amount, total=1000, notify_url=rig.notify_url)

        assert await self._refund_done(rig, rr(300)) == RefundStatus.SUCCEEDED
        assert await self._refund_done(rig, rr(600)) == RefundStatus.SUCCEEDED
        try:
            status = await self._refund_done(rig, rr(200))  # only 100 left
        except YinyiError as exc:
            assert not isinstance(exc, UpstreamError), "a refusal must be a clear answer, not an unknown outcome"
            return
        assert status == RefundStatus.FAILED

    async def test_refund_retry_with_same_number_refunds_once(self, rig: Rig) -> None:
        _needs(rig, Capability.PARTIAL_REFUND)
        pay = await rig.paid_order(1000)
        req = RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no=new_id("Q"), amount=600,
                            total=1000, notify_url=rig.notify_url)
        assert await self._refund_done(rig, req) == RefundStatus.SUCCEEDED
        try:
            again = await self._refund_done(rig, req)
            assert again == RefundStatus.SUCCEEDED
        except YinyiError as exc:
            assert not isinstance(exc, UpstreamError)
        other = RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no=new_id("Q"), amount=600,
                              total=1000, notify_url=rig.notify_url)
        try:
            assert await self._refund_done(rig, other) == RefundStatus.FAILED  # 400 left, not 600
        except YinyiError as exc:
            assert not isinstance(exc, UpstreamError)

    # --- bill ---------------------------------------------------------------------------
    async def test_bill_matches_its_own_totals(self, rig: Rig) -> None:
        _needs(rig, Capability.BILL)
        paid = [await rig.paid_order(amount) for amount in (101, 202)]
        refunded = None
        if rig.cls.supports(Capability.REFUND):
            refunded = RefundRequest(out_trade_no=paid[1].out_trade_no, out_refund_no=new_id("Q"), amount=202,
                                     total=202, notify_url=rig.notify_url)
            assert await self._refund_done(rig, refunded) == RefundStatus.SUCCEEDED
        today = rig.driver.bill_date(dt.datetime.now(dt.UTC))
        bill = await rig.adapter.download_bill(today)
        if refunded is not None:
            lines = [ln for ln in bill.lines if ln.kind == "refund" and ln.out_trade_no == refunded.out_trade_no]
            assert lines and lines[0].amount == -202
        payments = [line for line in bill.lines if line.kind == "payment"]
        assert bill.total_count == len(bill.lines)
        assert bill.total_paid == sum(line.amount for line in payments)
        assert bill.total_refunded == -sum(line.amount for line in bill.lines if line.kind == "refund")
        ours = {p.out_trade_no for p in paid}
        assert ours <= {line.out_trade_no for line in payments}
