"""Business-system definitions in TOML files (``configs/his/*.toml``), shared by every adapter.

A file describes one system::

    [system]
    id = "his"                      # how the gateway names the system
    name = "医院HIS"                 # shown to finance staff
    adapter = "rest"                # a registered HIS adapter id
    business_types = ["outpatient"] # the business types whose payments it records

    [config]                        # the adapter's own configuration (its config_model)
    ...

Only the shape is checked here; the ``config`` table is validated by the adapter's
``config_model`` when the gateway builds the adapter.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError


def load_system_toml(path: str | Path) -> dict[str, Any]:
    """Read one system file into ``{"id", "name", "adapter", "business_types", "config"}``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", file=str(path)) from exc
    unknown = set(data) - {"system", "config"}
    if unknown:
        raise ConfigError(f"{path}: unknown tables {', '.join(sorted(unknown))}; use [system] and [config]",
                          file=str(path))
    system, config = data.get("system"), data.get("config")
    if not isinstance(system, dict):
        raise ConfigError(f"{path}: missing [system] table", file=str(path))
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: missing [config] table", file=str(path))
    for key in ("id", "name", "adapter"):
        if not isinstance(system.get(key), str) or not system[key].strip():
            raise ConfigError(f"{path}: [system] needs a non-empty string {key!r}", file=str(path), field=key)
    business_types = system.get("business_types", [])
    if not isinstance(business_types, list) or not all(isinstance(b, str) and b for b in business_types):
        raise ConfigError(f"{path}: [system] business_types must be a list of strings", file=str(path),
                          field="business_types")
    extra = set(system) - {"id", "name", "adapter", "business_types"}
    if extra:
        raise ConfigError(f"{path}: unknown [system] keys {', '.join(sorted(extra))}", file=str(path))
    return {"id": system["id"], "name": system["name"], "adapter": system["adapter"],
            "business_types": list(business_types), "config": config}
