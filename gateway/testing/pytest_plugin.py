"""pytest plugin shipped with yinyi (entry point ``pytest11``): fixtures for plugin authors.

- ``yinyi_settings``: embedded settings in a temporary data directory (or the
  database/Redis named by ``YINYI_TEST_DATABASE_URL`` / ``YINYI_TEST_REDIS_URL``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..config import Settings


def make_test_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": tmp, "resolver_interval_seconds": 0.2, "port": 0}
    if os.environ.get("YINYI_TEST_DATABASE_URL"):
        values["database_url"] = os.environ["YINYI_TEST_DATABASE_URL"]
    if os.environ.get("YINYI_TEST_REDIS_URL"):
        values["redis_url"] = os.environ["YINYI_TEST_REDIS_URL"]
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def yinyi_settings(tmp_path: Path) -> Settings:
    return make_test_settings(tmp_path)
