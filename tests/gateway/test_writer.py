"""The ledger's write path on SQLite: writes run on the loop's connection while the
write lock is free, and wait in the writer thread (never on the loop) while another
connection, here another process's, holds it."""
from __future__ import annotations

import asyncio
import sqlite3
import time

from sqlalchemy import text

from gateway.config import Settings
from gateway.core import Core


async def test_a_held_write_lock_is_waited_for_off_the_loop(settings: Settings) -> None:
    if not settings.is_sqlite:
        return  # PostgreSQL writes never take a file lock; its paths run in every other test
    core = Core(settings)
    await core.start(background=False)
    try:
        writer = core.writer
        await writer.run(lambda conn: conn.execute(text("CREATE TABLE t (v INTEGER)")))
        await writer.run(lambda conn: conn.execute(text("INSERT INTO t VALUES (1)")))  # lock free: inline
        path = settings.effective_database_url.split("///", 1)[1]
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            task = asyncio.ensure_future(writer.run(lambda conn: conn.execute(text("INSERT INTO t VALUES (2)"))))
            t0 = time.perf_counter()
            await asyncio.sleep(0.3)
            # The loop kept running (this sleep returned on time) and the write is still waiting.
            assert time.perf_counter() - t0 < 0.25 + 0.3
            assert not task.done()
        finally:
            other.execute("COMMIT")
            other.close()
        await asyncio.wait_for(task, 10)
        rows = await writer.run(lambda conn: [r[0] for r in conn.execute(text("SELECT v FROM t ORDER BY v"))])
        assert rows == [1, 2]
    finally:
        await core.stop()
