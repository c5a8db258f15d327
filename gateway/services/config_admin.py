"""Configuration administration: campuses, merchants, entries, channel switches and
caller apps. Every change is validated and audited; secrets are stored encrypted and
never returned after creation. Changes reach every gateway process within the
directory's cache lifetime (seconds), without a restart.
"""
from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..channel import Method
from ..config import new_token
from ..db.models import App, Campus, ChannelSetting, Entry, Merchant, utcnow
from ..errors import ConfigError, Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from ..core import Core

_ID = r"^[A-Za-z0-9_\-]{1,40}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CampusIn(_In):
    name: str = Field(min_length=1, max_length=100)


class MerchantIn(_In):
    channel: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=100)
    merchant_id: str | None = Field(default=None, pattern=_ID)
    campus_id: str | None = Field(default=None, max_length=40)
    business_types: list[str] = Field(default_factory=list)
    priority: int = Field(default=100, ge=0, le=10000)
    config: dict[str, Any]


class MerchantPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    campus_id: str | None = None
    business_types: list[str] | None = None
    priority: int | None = Field(default=None, ge=0, le=10000)
    enabled: bool | None = None
    config: dict[str, Any] | None = Field(default=None, description="Replaces the whole configuration")


class EntryIn(_In):
    code: str = Field(pattern=r"^[A-Za-z0-9_\-.:]{1,64}$")
    name: str = Field(min_length=1, max_length=100)
    app_id: str = Field(min_length=1, max_length=40)
    campus_id: str | None = Field(default=None, max_length=40)
    business_type: str = Field(min_length=1, max_length=40)
    channels: list[str] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)
    merchants: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True


class EntryPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    campus_id: str | None = None
    channels: list[str] | None = None
    methods: list[Method] | None = None
    merchants: dict[str, str] | None = None
    enabled: bool | None = None


class ChannelSwitch(_In):
    enabled: bool | None = None
    disabled_methods: list[Method] | None = None


class AppIn(_In):
    name: str = Field(min_length=1, max_length=100)
    business_types: list[str] = Field(default_factory=lambda: ["*"])
    merchant_ids: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=lambda: ["pay"])


class AppPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    business_types: list[str] | None = None
    merchant_ids: list[str] | None = None
    scopes: list[str] | None = None
    enabled: bool | None = None


_SCOPES = {"pay", "admin"}


def secret_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, f in model.model_fields.items() if "SecretStr" in repr(f.annotation)}


class ConfigAdmin:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def _audit(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        await self.core.ledger.audit(actor, action, target, detail)
        self.core.directory.invalidate()

    async def _get(self, model: type, key: str, what: str) -> Any:
        async with self.core.rsm() as s:
            row = await s.get(model, key)
        if row is None:
            raise NotFound(f"{what} {key!r} not found")
        return row

    async def _save(self, row: Any) -> None:
        async with self.core.sm() as s:
            await s.merge(row)
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"conflicts with an existing record: {exc.orig}") from exc

    # --- campuses ------------------------------------------------------------------
    async def list_campuses(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            return [{"id": c.id, "name": c.name} for c in (await s.execute(select(Campus).order_by(Campus.id))).scalars()]

    async def put_campus(self, actor: str, campus_id: str, body: CampusIn) -> dict[str, Any]:
        await self.core.directory.upsert_campus(campus_id, body.name)
        await self._audit(actor, "campus.put", campus_id, body.model_dump())
        return {"id": campus_id, "name": body.name}

    # --- merchants -----------------------------------------------------------------
    def merchant_out(self, m: Merchant) -> dict[str, Any]:
        cls = self.core.registry.channels.get(m.channel)
        public: dict[str, Any] = {}
        if cls is not None:
            hidden = secret_fields(cls.config_model)
            cfg = self.core.vault.decrypt_json(m.config_enc)
            public = {k: v for k, v in cfg.items() if k not in hidden and not isinstance(v, dict)
                      and "key" not in k.lower() and "secret" not in k.lower()}
        return {"id": m.id, "channel": m.channel, "name": m.name, "campus_id": m.campus_id,
                "business_types": m.business_types, "priority": m.priority, "enabled": m.enabled,
                "config": public, "config_secrets": "stored encrypted; never returned"}

    async def list_merchants(self) -> list[dict[str, Any]]:
        return [self.merchant_out(m) for m in await self.core.directory.list_merchants()]

    def _validate_config(self, channel: str, config: dict[str, Any]) -> None:
        cls = self.core.registry.channel(channel)
        try:
            cls.config_model.model_validate(config)
        except ValidationError as exc:
            raise ValidationFailed(f"{channel} merchant configuration is invalid",
                                   errors=[{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                                           for e in exc.errors(include_url=False, include_input=False)]) from exc

    async def create_merchant(self, actor: str, body: MerchantIn) -> dict[str, Any]:
        self._validate_config(body.channel, body.config)
        if body.merchant_id:
            async with self.core.rsm() as s:
                if await s.get(Merchant, body.merchant_id) is not None:
                    raise Conflict(f"merchant {body.merchant_id} already exists")
        try:
            mid = await self.core.directory.create_merchant(
                channel=body.channel, name=body.name, config=body.config, campus_id=body.campus_id,
                business_types=body.business_types, merchant_id=body.merchant_id, priority=body.priority)
        except ConfigError as exc:
            raise ValidationFailed(str(exc)) from exc
        await self._audit(actor, "merchant.create", mid, {"channel": body.channel, "name": body.name,
                                                          "campus_id": body.campus_id})
        return self.merchant_out(await self._get(Merchant, mid, "merchant"))

    async def patch_merchant(self, actor: str, merchant_id: str, body: MerchantPatch) -> dict[str, Any]:
        m = await self._get(Merchant, merchant_id, "merchant")
        changes = body.model_dump(exclude_unset=True)
        if "config" in changes:
            self._validate_config(m.channel, changes["config"])
            m.config_enc = self.core.vault.encrypt_json(changes.pop("config"))
            changes["config"] = "replaced"
        for k, v in changes.items():
            if k != "config":
                setattr(m, k, v)
        await self._save(m)
        await self._audit(actor, "merchant.patch", merchant_id, changes)
        return self.merchant_out(await self._get(Merchant, merchant_id, "merchant"))

    # --- entries -------------------------------------------------------------------
    @staticmethod
    def entry_out(e: Entry) -> dict[str, Any]:
        return {"id": e.id, "code": e.code, "name": e.name, "app_id": e.app_id, "campus_id": e.campus_id,
                "business_type": e.business_type, "channels": e.channels, "methods": e.methods,
                "merchants": e.merchants, "enabled": e.enabled}

    async def _check_entry_refs(self, channels: list[str], merchants: dict[str, str]) -> None:
        for c in channels:
            self.core.registry.channel(c)
        for channel, mid in merchants.items():
            m = await self._get(Merchant, mid, "merchant")
            if m.channel != channel:
                raise ValidationFailed(f"merchant {mid} is a {m.channel} merchant, not {channel}")

    async def list_entries(self, app_id: str | None = None) -> list[dict[str, Any]]:
        q = select(Entry).order_by(Entry.app_id, Entry.code)
        if app_id:
            q = q.where(Entry.app_id == app_id)
        async with self.core.rsm() as s:
            return [self.entry_out(e) for e in (await s.execute(q)).scalars()]

    async def create_entry(self, actor: str, body: EntryIn) -> dict[str, Any]:
        await self._get(App, body.app_id, "app")
        await self._check_entry_refs(body.channels, body.merchants)
        e = Entry(id=new_token("ent_", 6), code=body.code, name=body.name, app_id=body.app_id,
                  campus_id=body.campus_id, business_type=body.business_type, channels=body.channels,
                  methods=[m.value for m in body.methods], merchants=body.merchants, enabled=body.enabled,
                  created_at=utcnow(), updated_at=utcnow())
        async with self.core.sm() as s:
            s.add(e)
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"app {body.app_id} already has an entry {body.code!r}") from exc
        await self._audit(actor, "entry.create", e.id, body.model_dump(mode="json"))
        return self.entry_out(e)

    async def patch_entry(self, actor: str, entry_id: str, body: EntryPatch) -> dict[str, Any]:
        e = await self._get(Entry, entry_id, "entry")
        changes = body.model_dump(exclude_unset=True, mode="json")
        await self._check_entry_refs(changes.get("channels") or [], changes.get("merchants") or {})
        for k, v in changes.items():
            setattr(e, k, v)
        e.updated_at = utcnow()
        await self._save(e)
        await self._audit(actor, "entry.patch", entry_id, changes)
        return self.entry_out(e)

    # --- channels ------------------------------------------------------------------
    async def list_channels(self) -> list[dict[str, Any]]:
        switches = await self.core.directory.switches()
        out = []
        for cid, cls in self.core.registry.channels.items():
            sw = switches.get(cid)
            out.append({"id": cid, "name_zh": cls.name_zh, "name_en": cls.name_en,
                        "capabilities": sorted(c.value for c in cls.capabilities),
                        "enabled": cid not in self.core.registry.disabled_channels and (sw is None or sw.enabled),
                        "disabled_methods": list(sw.disabled_methods) if sw else [],
                        "plugin": self.core.registry.origin.get(("channel", cid)),
                        "auth_code_hint": cls.auth_code_hint})
        return out

    async def switch_channel(self, actor: str, channel: str, body: ChannelSwitch) -> list[dict[str, Any]]:
        self.core.registry.channel(channel)
        async with self.core.sm() as s:
            row = await s.get(ChannelSetting, channel) or ChannelSetting(channel=channel, enabled=True,
                                                                          disabled_methods=[])
            if body.enabled is not None:
                row.enabled = body.enabled
            if body.disabled_methods is not None:
                row.disabled_methods = [m.value for m in body.disabled_methods]
            row.updated_at = utcnow()
            await s.merge(row)
            await s.commit()
        await self._audit(actor, "channel.switch", channel, body.model_dump(exclude_unset=True, mode="json"))
        return [c for c in await self.list_channels() if c["id"] == channel]

    # --- apps ------------------------------------------------------------------------
    @staticmethod
    def app_out(a: App) -> dict[str, Any]:
        return {"app_id": a.id, "name": a.name, "business_types": a.business_types, "merchant_ids": a.merchant_ids,
                "scopes": a.scopes, "enabled": a.enabled, "created_at": a.created_at.isoformat()}

    def _check_scopes(self, scopes: list[str] | None) -> None:
        if scopes is not None and not set(scopes) <= _SCOPES:
            raise ValidationFailed(f"scopes must be among {sorted(_SCOPES)}")

    async def list_apps(self) -> list[dict[str, Any]]:
        async with self.core.rsm() as s:
            return [self.app_out(a) for a in (await s.execute(select(App).order_by(App.created_at))).scalars()]

    async def create_app(self, actor: str, body: AppIn) -> dict[str, Any]:
        self._check_scopes(body.scopes)
        app_id, secret = await self.core.directory.create_app(body.name, business_types=body.business_types,
                                                              merchant_ids=body.merchant_ids, scopes=body.scopes)
        await self._audit(actor, "app.create", app_id, body.model_dump())
        return {**self.app_out(await self._get(App, app_id, "app")), "secret": secret,
                "secret_notice": "shown once; store it in the calling system"}

    async def patch_app(self, actor: str, app_id: str, body: AppPatch) -> dict[str, Any]:
        a = await self._get(App, app_id, "app")
        self._check_scopes(body.scopes)
        changes = body.model_dump(exclude_unset=True)
        for k, v in changes.items():
            setattr(a, k, v)
        await self._save(a)
        await self._audit(actor, "app.patch", app_id, changes)
        return self.app_out(a)

    async def rotate_secret(self, actor: str, app_id: str) -> dict[str, Any]:
        a = await self._get(App, app_id, "app")
        secret = secrets.token_urlsafe(32)
        a.secret_enc = self.core.vault.encrypt(secret)
        await self._save(a)
        await self._audit(actor, "app.rotate_secret", app_id, {})
        return {**self.app_out(a), "secret": secret, "secret_notice": "shown once; the old secret stops working"}


