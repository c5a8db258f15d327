"""Settings, validated at start-up. Environment variables ``YINYI_*`` override the
``[gateway]`` table of the TOML file named by ``YINYI_CONFIG`` (none by default)."""
from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("YINYI_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"YINYI_CONFIG names a missing file: {p}")
            self._data = tomllib.loads(p.read_text("utf-8")).get("gateway", {})

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)  # unknown keys reach validation and fail with their name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YINYI_", extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="Embedded database, keys and sandbox.json")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; SQLite file in data_dir when unset")
    redis_url: str | None = Field(default=None, description="Redis for nonces and shared limits; in-process when unset")
    secret_key: SecretStr | None = Field(default=None, description="Fernet key encrypting secrets at rest")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(default=1, ge=1, le=64,
                         description="Gateway processes sharing the port (more than one needs PostgreSQL and Redis)")
    event_loop: str = Field(default="auto", pattern="^(auto|asyncio|uvloop)$",
                            description="Event loop: uvloop when installed (auto), or the standard asyncio loop")
    public_base_url: str | None = Field(default=None, description="Base URL channels use to reach /v1/notify")
    signature_window_seconds: int = Field(default=300, ge=30, le=3600)
    resolver_enabled: bool = True
    resolver_interval_seconds: float = Field(default=1.0, gt=0)
    resolver_batch: int = Field(default=50, ge=1)
    resolver_max_attempts: int = Field(default=30, ge=1, description="Queries before an unsettled item goes to review")
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    callback_max_attempts: int = Field(default=15, ge=1, le=100,
                                       description="Deliveries of a caller notification before it is exhausted")
    not_found_grace_seconds: float = Field(default=60.0, ge=0,
                                           description="How long an order the channel has never seen may still appear")
    his_worker_interval_seconds: float = Field(default=0.5, gt=0, description="Write-back and case worker pace")
    his_writeback_retry_waits: list[float] = Field(default_factory=lambda: [0.5, 1.5],
                                                   description="Seconds between the quick write-back attempts")
    his_writeback_slow_interval_seconds: float = Field(default=30.0, gt=0,
                                                       description="First slow retry after a failed write-back round")
    his_writeback_slow_max_seconds: float = Field(default=600.0, gt=0)
    his_writeback_max_rounds: int = Field(default=200, ge=1, description="Slow rounds before only staff may retry")
    insurance_worker_interval_seconds: float = Field(default=0.5, gt=0,
                                                     description="Pace of the insurance settlement worker")
    insurance_topup_timeout_seconds: float = Field(default=300.0, gt=0,
                                                   description="How long the self-pay top-up may stay unpaid before "
                                                               "the insurance settlement is reversed")
    insurance_call_grace_seconds: float = Field(default=60.0, gt=0,
                                                description="How long a settle call may be in flight before the "
                                                            "worker treats its outcome as unknown (longer than the "
                                                            "centre's timeout)")
    insurance_retry_seconds: float = Field(default=2.0, gt=0, description="First wait before retrying a centre call")
    single_sided_auto_refund_minutes: float = Field(default=30.0, ge=0,
                                                    description="Refund small single-sided cases this long after opening")
    single_sided_auto_refund_max: int = Field(default=20000, ge=0,
                                              description="Largest amount (fen) refunded without approval; 0 = never")
    approval_tiers: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"max_amount": 100000, "role": "finance"},
                                 {"max_amount": None, "role": "finance_director"}],
        description="审核区间: the role needed, by amount (fen); the first tier whose max_amount covers it")
    notice_max_attempts: int = Field(default=10, ge=1, le=100)
    recon_window_days: int = Field(default=1, ge=0, le=7,
                                   description="对账窗口: adjacent days searched before an entry is a difference (T±k)")
    recon_arrival_days: int = Field(default=3, ge=1, le=15,
                                    description="资金到账: days after a channel day within which its settlement must arrive")
    recon_scheduler_enabled: bool = Field(default=True, description="Run the scheduled T+0 and T+1 reconciliation")
    recon_t0_interval_seconds: float = Field(default=300.0, ge=0,
                                             description="T+0: HIS × platform of today every so many seconds; 0 = off")
    recon_t1_after: str = Field(default="10:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                                description="T+1: yesterday's three-way run starts after this time (China), once")
    recon_fetch_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per bill fetch")
    recon_fetch_backoff_seconds: float = Field(default=1.0, ge=0, description="First wait between bill fetch attempts")
    # --- finance console (财务管理后台, /console/) ---------------------------------------
    console_password_min_length: int = Field(default=10, ge=8, le=128, description="Shortest console password")
    console_password_min_classes: int = Field(default=3, ge=1, le=4,
                                              description="Character classes a password needs (lower, upper, "
                                                          "digit, other)")
    console_password_change_on_first_login: bool = Field(default=False,
                                                         description="Users created by an administrator must "
                                                                     "change their password at first login")
    console_lockout_attempts: int = Field(default=5, ge=1, le=100,
                                          description="Failed logins (password or code) before the account locks")
    console_lockout_minutes: float = Field(default=15.0, gt=0, description="How long a locked account stays locked")
    console_session_idle_seconds: float = Field(default=900.0, gt=0,
                                                description="A console session ends after this long without a request")
    console_session_lifetime_seconds: float = Field(default=28800.0, gt=0,
                                                    description="A console session ends this long after login")
    console_max_sessions_per_user: int = Field(default=3, ge=1, le=100,
                                               description="Concurrent sessions per user; the oldest is ended")
    console_login_token_seconds: float = Field(default=300.0, gt=0,
                                               description="Time between the password and the TOTP code")
    console_cookie_secure: bool = Field(default=False, description="Always mark the session cookie Secure "
                                                                   "(it is whenever the request is https)")
    console_totp_issuer: str = Field(default="yinyi", min_length=1, max_length=40,
                                     description="Issuer shown in authenticator apps")
    console_scrypt_n: int = Field(default=2 ** 14, ge=2 ** 10, le=2 ** 17,
                                  description="scrypt cost of new password hashes (a power of two)")
    disabled_plugins: list[str] = Field(default_factory=list)
    disabled_channels: list[str] = Field(default_factory=list)
    trace_hooks: bool = False
    log_bodies: bool = True
    db_pool_size: int = Field(default=20, ge=1, description="Connections kept open per process (PostgreSQL); "
                              "half as many again may open under bursts")

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v and not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v

    @field_validator("console_scrypt_n")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError("console_scrypt_n must be a power of two")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):  # type: ignore[override]
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # --- derived ------------------------------------------------------------------
    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'yinyi.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def fernet_key(self) -> bytes:
        """The key that encrypts secrets at rest. Embedded mode keeps one in data_dir."""
        if self.secret_key:
            return self.secret_key.get_secret_value().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret.key"
        if not path.exists():
            from cryptography.fernet import Fernet

            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return path.read_bytes().strip()


def new_token(prefix: str, nbytes: int = 10) -> str:
    return prefix + secrets.token_hex(nbytes)
