"""Alipay through the channel conformance kit."""
from __future__ import annotations

import pytest

from channels.alipay.adapter import AlipayChannel
from channels.alipay.conformance import AlipayDriver
from channels.alipay.simulator import start_simulator
from gateway.channel import Method, TradeStatus
from gateway.testing.conformance import ChannelConformance, ChannelUnderTest, Rig

PAID = (TradeStatus.SUCCEEDED, TradeStatus.REFUNDED)


class TestAlipayConformance(ChannelConformance):
    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        return ChannelUnderTest(AlipayChannel, start_simulator, AlipayDriver)

    @pytest.mark.parametrize("method", [Method.QR, Method.JSAPI, Method.H5])
    async def test_order_methods(self, rig: Rig, method: Method) -> None:
        if method is not Method.H5:
            await super().test_order_methods(rig, method)
            return
        # The kit's driver.confirm() gets the order number only, but an Alipay H5 order
        # (alipay.trade.wap.pay) becomes a trade when the patient's browser opens the
        # signed URL: open it, then pay as the kit does.
        req = rig.pay_request(method)
        r = await rig.adapter.pay(req)
        assert r.status in (TradeStatus.PENDING, TradeStatus.PAYING) and r.h5_url
        assert isinstance(rig.driver, AlipayDriver)
        await rig.driver.open_page(r.h5_url)
        await rig.driver.confirm(req.out_trade_no)
        await rig.settle(req.out_trade_no, PAID)
