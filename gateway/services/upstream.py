"""Calling an adapter: timing, interface logging, metrics, and the unknown-outcome rule."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from pydantic import BaseModel

from ..channel import ChannelAdapter, PayResult, RefundResult, ReverseResult, TradeStatus
from ..errors import UpstreamError, UpstreamTimeout, YinyiError
from ..metrics import UPSTREAM_CALLS, UPSTREAM_LATENCY
from .interface_log import InterfaceLogWriter

T = TypeVar("T")


def _declined(result: Any) -> bool:
    if isinstance(result, PayResult):
        return result.status == TradeStatus.FAILED
    if isinstance(result, RefundResult):
        return result.error_code is not None
    if isinstance(result, ReverseResult):
        return result.error_code is not None
    return False


async def call_upstream(ilog: InterfaceLogWriter, adapter: ChannelAdapter, op: str, coro: Awaitable[T], *,
                        merchant_id: str, payment_id: str | None, request: Any = None,
                        timeout: float | None = None) -> T:
    """Await one adapter call. Any exception that is not a YinyiError is an unknown outcome."""
    t0 = time.perf_counter()
    iface = f"{adapter.id}.{op}"
    outcome, code, response = "normal", None, None
    try:
        if timeout is not None:
            result = await asyncio.wait_for(coro, timeout)
        else:
            result = await coro
        if _declined(result):
            outcome = "rejected"
            code = getattr(result, "error_code", None)
        response = result.model_dump(mode="json", exclude={"raw"}) if isinstance(result, BaseModel) else result
        return result
    except TimeoutError as exc:
        outcome, code = "abnormal", UpstreamTimeout.code
        raise UpstreamTimeout(f"{iface} timed out") from exc
    except UpstreamError as exc:
        outcome, code = "abnormal", exc.code
        raise
    except YinyiError as exc:
        outcome, code = "rejected", exc.code
        raise
    except Exception as exc:  # an adapter bug or an unexpected transport error: outcome unknown
        outcome, code = "abnormal", UpstreamError.code
        raise UpstreamError(f"{iface} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        elapsed = time.perf_counter() - t0
        UPSTREAM_CALLS.labels(interface=iface, outcome=outcome).inc()
        UPSTREAM_LATENCY.labels(interface=iface).observe(elapsed)
        req = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
        ilog.record(direction="out", interface=iface, outcome=outcome, latency_ms=elapsed * 1000,
                    channel=adapter.id, merchant_id=merchant_id, payment_id=payment_id, error_code=code,
                    request=req, response=response)
