"""The fault plan every HIS simulator honours."""
from __future__ import annotations

import pytest

from his_adapters.simhis import FaultPlan


def test_count_is_consumed() -> None:
    plan = FaultPlan()
    plan.set("write_back", "timeout", count=2, after=True)
    first = plan.take("write_back")
    assert first is not None and first.kind == "timeout" and first.after and first.count == 1
    assert plan.take("pending") is None
    assert plan.take("write_back") is not None and plan.take("write_back") is None


def test_until_cleared_and_wildcard() -> None:
    plan = FaultPlan()
    plan.set("*", "error")
    plan.set("bill", "malformed", count=1)
    assert plan.take("bill").kind == "malformed"  # type: ignore[union-attr]
    assert all(plan.take(op).kind == "error" for op in ("bill", "pending", "write_back") for _ in range(3))  # type: ignore[union-attr]
    plan.clear()
    assert plan.take("bill") is None


def test_setting_replaces_the_operation_fault() -> None:
    plan = FaultPlan()
    plan.set("pending", "down")
    plan.set("pending", "refuse", count=1)
    assert plan.take("pending").kind == "refuse" and plan.take("pending") is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("op", "kind", "count"), [("pay", "error", None), ("bill", "slow", None),
                                                   ("bill", "error", 0), ("bill", "error", True)])
def test_bad_plans_are_refused(op: str, kind: str, count: object) -> None:
    with pytest.raises(ValueError):
        FaultPlan().set(op, kind, count=count)  # type: ignore[arg-type]
