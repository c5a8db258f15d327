"""e-CNY (with the reference bank behind it) through the channel conformance kit."""
from __future__ import annotations

import pytest

from channels.ecny import EcnyChannel
from channels.ecny.plugin import start_simulator
from gateway.testing.conformance import ChannelConformance, ChannelUnderTest
from plugins.banks.refbank.conformance import RefBankDriver


class TestEcnyConformance(ChannelConformance):
    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        return ChannelUnderTest(EcnyChannel, start_simulator, RefBankDriver)
