"""yinyi (银医): unified payment and reconciliation gateway for hospitals."""
from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("yinyi")

__all__ = ["__version__", "hookimpl"]
