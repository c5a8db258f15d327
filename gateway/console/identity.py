"""Who is at the console for this request (set by the console middleware, read by handlers)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Identity:
    user_id: str
    username: str
    display_name: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    approval_roles: tuple[str, ...]
    session_id: str
    csrf_token: str
    must_change_password: bool = False
    campus_id: str | None = None
    department: str | None = None
    ip: str | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        """The operator recorded by the services (audit log, approvals, case history)."""
        return f"console:{self.username}"

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    def user_out(self) -> dict[str, object]:
        return {"username": self.username, "display_name": self.display_name, "roles": list(self.roles),
                "permissions": sorted(self.permissions), "approval_roles": list(self.approval_roles),
                "campus_id": self.campus_id, "department": self.department,
                "must_change_password": self.must_change_password}
