"""Hello Bank Pay through yinyi's channel conformance kit."""
import pytest
from gateway.testing.conformance import ChannelConformance, ChannelUnderTest
from hello_bank.adapter import HelloBankChannel
from hello_bank.simulator import start_simulator
from hello_bank.conformance import HelloBankDriver


class TestHelloBankConformance(ChannelConformance):
    @pytest.fixture
    def channel_under_test(self):
        return ChannelUnderTest(HelloBankChannel, start_simulator, HelloBankDriver)
