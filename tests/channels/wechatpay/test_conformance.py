"""WeChat Pay through the channel conformance kit."""
import pytest

from channels.wechatpay.adapter import WeChatPayChannel
from channels.wechatpay.conformance import WeChatPayDriver
from channels.wechatpay.simulator import start_simulator
from gateway.testing.conformance import ChannelConformance, ChannelUnderTest


class TestWeChatPayConformance(ChannelConformance):
    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        return ChannelUnderTest(WeChatPayChannel, start_simulator, WeChatPayDriver)
