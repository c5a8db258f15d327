"""Configured insurance centres (医保中心) and their adapter instances.

A centre is configuration, not code: an adapter id (``nhsa`` or a plugin's) and the
adapter's configuration, encrypted at rest (it holds OAuth secrets and SM keys).
Adapter instances are cached per process, keyed by a digest of the stored
configuration and re-read every few seconds, so every process follows an update.
Calls to a centre go through :meth:`InsuranceCentres.call`, which records them in
the interface log (bodies masked) and in the metrics.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..db.models import InsuranceCentre
from ..errors import InsuranceCentreUnknown, UpstreamError, YinyiError
from ..insurance import InsuranceAdapter
from ..metrics import UPSTREAM_CALLS, UPSTREAM_LATENCY
from .configured import ConfiguredAdapters

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.insurance")
T = TypeVar("T")


class CentreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    adapter: str = Field(min_length=1, max_length=40)
    config: dict[str, Any]
    enabled: bool = True


def centre_out(row: InsuranceCentre, adapter_cls: Any) -> dict[str, Any]:
    profile = None
    try:
        profile = row.adapter and getattr(getattr(adapter_cls, "config", None), "profile", None)
    except Exception:  # pragma: no cover - a description never fails a listing
        profile = None
    return {"id": row.id, "name": row.name, "adapter": row.adapter, "enabled": row.enabled,
            "adapter_name_zh": getattr(adapter_cls, "name_zh", None),
            "profile": getattr(profile, "name", None), "updated_at": row.updated_at.isoformat()}


class InsuranceCentres(ConfiguredAdapters[InsuranceAdapter]):
    model = InsuranceCentre
    kind = "insurance centre"
    audit_prefix = "insurance_centre"
    unknown_error = InsuranceCentreUnknown

    def registered(self) -> dict[str, type]:
        return self.core.registry.insurance_adapters

    async def resolve(self, centre_id: str | None) -> str:
        """The centre a request names, or the only enabled one when it names none."""
        ids = await self.enabled_ids()
        if centre_id is None:
            if len(ids) == 1:
                return ids[0]
            raise InsuranceCentreUnknown("name the insurance centre (centre)" if ids else
                                         "no insurance centre is configured", available=ids)
        if centre_id not in ids:
            raise InsuranceCentreUnknown(f"insurance centre {centre_id!r} is not configured or is disabled",
                                         centre=centre_id, available=ids)
        return centre_id

    # --- calls ----------------------------------------------------------------------------
    async def call(self, centre_id: str, op: str, coro: Awaitable[T], *, request: Any = None,
                   subject_id: str | None = None) -> T:
        """Await one adapter call, recording it; exceptions pass through unchanged."""
        t0 = time.perf_counter()
        iface = f"insurance.{op}"
        outcome, code, response = "normal", None, None
        try:
            result = await coro
            response = result.model_dump(mode="json") if isinstance(result, BaseModel) else None
            return result
        except UpstreamError as exc:
            outcome, code = "abnormal", exc.code
            raise
        except YinyiError as exc:
            outcome, code = "rejected", exc.code
            raise
        finally:
            elapsed = time.perf_counter() - t0
            UPSTREAM_CALLS.labels(interface=iface, outcome=outcome).inc()
            UPSTREAM_LATENCY.labels(interface=iface).observe(elapsed)
            req = request.model_dump(mode="json", exclude={"password"}) if isinstance(request, BaseModel) \
                else request
            self.core.ilog.record(direction="out", interface=iface, outcome=outcome, latency_ms=elapsed * 1000,
                                  channel=f"insurance:{centre_id}", payment_id=subject_id, error_code=code,
                                  request=req, response=response)

    # --- administration -----------------------------------------------------------------
    async def put(self, actor: str, centre_id: str, body: CentreIn) -> dict[str, Any]:
        cls = self.validate_config(body.adapter, body.config)
        row = await self.upsert(actor, centre_id, {"name": body.name, "adapter": body.adapter,
                                                   "config": body.config, "enabled": body.enabled},
                                {"adapter": body.adapter, "enabled": body.enabled})
        built: Any = cls
        if body.enabled and self.core.http is not None:
            built = await self.adapter(centre_id)
        return centre_out(row, built)

    async def list(self) -> list[dict[str, Any]]:
        return [centre_out(r, await self.built(r)) for r in sorted((await self._rows()).values(), key=lambda r: r.id)]
