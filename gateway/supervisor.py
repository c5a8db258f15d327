"""Several gateway processes on one port (``yinyi serve --workers N``).

Each worker is a whole gateway (API, resolver, outbox, workers) binding the same port
with SO_REUSEPORT, so the kernel spreads connections over them; they share the ledger
in PostgreSQL and nonces and locks in Redis, as separate hosts would. The supervisor
migrates the database once before starting them, forwards SIGINT/SIGTERM, and stops
all when one dies, so that the service manager (systemd, a container runtime)
restarts the set rather than leaving it short of a worker unnoticed.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from .config import Settings
from .db.engine import migrate

log = logging.getLogger("yinyi.supervisor")


def run_workers(settings: Settings) -> int:
    migrate(settings.effective_database_url)
    env = dict(os.environ, YINYI_HOST=settings.host, YINYI_PORT=str(settings.port), YINYI_WORKERS="1")
    cmd = [sys.executable, "-m", "gateway", "serve", "--reuse-port"]
    procs = [subprocess.Popen(cmd, env=env) for _ in range(settings.workers)]
    log.info("gateway on %s:%s with %d workers (pids %s)", settings.host, settings.port, len(procs),
             " ".join(str(p.pid) for p in procs))
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    while True:
        exited = [p for p in procs if p.poll() is not None]
        if exited and not stopping:
            code = exited[0].returncode or 1
            log.error("worker %d exited with %s; stopping the others", exited[0].pid, exited[0].returncode)
            _stop(signal.SIGTERM, None)
        if len(exited) == len(procs):
            return code
        time.sleep(0.2)
