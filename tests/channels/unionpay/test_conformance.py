"""UnionPay through the channel conformance kit."""
import pytest

from channels.unionpay.adapter import UnionPayChannel
from channels.unionpay.conformance import UnionPayDriver
from channels.unionpay.simulator import start_simulator
from gateway.testing.conformance import ChannelConformance, ChannelUnderTest


class TestUnionPayConformance(ChannelConformance):
    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        return ChannelUnderTest(UnionPayChannel, start_simulator, UnionPayDriver)
