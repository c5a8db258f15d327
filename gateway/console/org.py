"""组织机构: the departments (科室/部门) under the campuses, as the console manages them.

Campuses are the gateway's own (``/v1/admin/campuses``, they route payments to merchants);
departments only organise people: a console user names one (``department``). Every change is
written to the operation log.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from ..db.models import Campus, ConsoleUser, Department, utcnow
from ..errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from ..core import Core

DEPARTMENT_ID = r"^[A-Za-z0-9_\-.]{1,40}$"


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=100)
    campus_id: str | None = Field(default=None, max_length=40)
    parent_id: str | None = Field(default=None, max_length=40)
    enabled: bool = True


def department_out(d: Department, users: int = 0) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "campus_id": d.campus_id, "parent_id": d.parent_id, "enabled": d.enabled,
            "users": users, "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat()}


class Organisation:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def departments(self) -> list[dict[str, Any]]:
        """Every department, with how many console users name it (by id)."""
        async with self.core.rsm() as s:
            rows = (await s.execute(select(Department).order_by(Department.campus_id, Department.id))).scalars().all()
            counts = dict((await s.execute(select(ConsoleUser.department, func.count())
                                           .where(ConsoleUser.department.is_not(None))
                                           .group_by(ConsoleUser.department))).all())
        return [department_out(d, int(counts.get(d.id, 0))) for d in rows]

    async def put_department(self, dep_id: str, body: DepartmentIn, *, by: str, ip: str | None) -> dict[str, Any]:
        """Create or change a department; its campus must exist, its parent too (and not be below it)."""
        if not re.fullmatch(DEPARTMENT_ID, dep_id):
            raise ValidationFailed("a department code is 1 to 40 letters, digits, '-', '_' or '.'")
        async with self.core.sm() as s:
            if body.campus_id and await s.get(Campus, body.campus_id) is None:
                raise ValidationFailed(f"campus {body.campus_id!r} does not exist", campus_id=body.campus_id)
            parent = body.parent_id
            seen = {dep_id}
            while parent:
                if parent in seen:
                    raise ValidationFailed("a department cannot be placed below itself", parent_id=body.parent_id)
                seen.add(parent)
                row = await s.get(Department, parent)
                if row is None:
                    raise ValidationFailed(f"department {parent!r} does not exist", parent_id=body.parent_id)
                parent = row.parent_id
            dep = await s.get(Department, dep_id)
            created = dep is None
            now = utcnow()
            if dep is None:
                dep = Department(id=dep_id, created_at=now)
                s.add(dep)
            dep.name, dep.campus_id, dep.parent_id = body.name, body.campus_id, body.parent_id
            dep.enabled = body.enabled
            dep.updated_at = now
            await s.commit()
        await self.core.console.oplog.write(username=by, ip=ip, action="department.put", target=dep_id,
                                            detail={"created": created, **body.model_dump()})
        return department_out(dep)

    async def delete_department(self, dep_id: str, *, by: str, ip: str | None) -> None:
        """Remove a department nobody names and no department sits below."""
        async with self.core.sm() as s:
            dep = await s.get(Department, dep_id)
            if dep is None:
                raise NotFound(f"department {dep_id!r} not found")
            children = (await s.execute(select(Department.id).where(Department.parent_id == dep_id))).scalars().all()
            users = (await s.execute(select(ConsoleUser.username)
                                     .where(ConsoleUser.department == dep_id))).scalars().all()
            if children or users:
                raise Conflict("the department still has departments below it or users in it",
                               departments=list(children), users=list(users))
            await s.delete(dep)
            await s.commit()
        await self.core.console.oplog.write(username=by, ip=ip, action="department.delete", target=dep_id,
                                            detail={"name": dep.name})
