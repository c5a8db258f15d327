"""Gateway processes for multi-process and crash tests (real `yinyi serve` processes)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from gateway.config import Settings


def env_for(settings: Settings, port: int, public_port: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "YINYI_DATA_DIR": str(settings.data_dir),
        "YINYI_DATABASE_URL": settings.effective_database_url,
        "YINYI_HOST": "127.0.0.1",
        "YINYI_PORT": str(port),
        "YINYI_PUBLIC_BASE_URL": f"http://127.0.0.1:{public_port or port}",
        "YINYI_RESOLVER_INTERVAL_SECONDS": "0.2",
    })
    if settings.redis_url:
        env["YINYI_REDIS_URL"] = settings.redis_url
    return env


class GatewayProcess:
    def __init__(self, settings: Settings, port: int, log_path: Path, public_port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._env = env_for(settings, port, public_port) | (extra_env or {})
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self._log = open(self._log_path, "ab")  # noqa: SIM115 - closed in kill()/stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=self._env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as s:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gateway exited early; see {self._log_path}:\n{self._log_path.read_text()[-3000:]}")
                try:
                    async with s.get(self.base_url + "/v1/health") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"gateway did not become healthy; see {self._log_path}")
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush: a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()
