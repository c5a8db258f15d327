"""Message ids: fixmedins_code (12) + yyyyMMddHHmmss (14, China time) + sequence (4).

The centre refuses a repeated msgid, and 2601 addresses a call by it, so ids must
be unique across concurrent calls. One generator per hospital code is shared by
every adapter instance in the process; the clock never goes backwards for it,
and when a second's 10,000 numbers are used up it borrows the next second.
Several gateway processes with the same code must partition the sequence
(``sequence_offset``/``sequence_step``) or share a generator.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from .wire import CST

_GENERATORS: dict[str, MsgIdGenerator] = {}
_REGISTRY_LOCK = threading.Lock()


class MsgIdGenerator:
    def __init__(self, fixmedins_code: str, *, clock: Callable[[], dt.datetime] | None = None,
                 sequence_offset: int = 0, sequence_step: int = 1) -> None:
        if len(fixmedins_code) != 12:
            raise ValueError("fixmedins_code is 12 characters")
        if not 0 <= sequence_offset < sequence_step <= 10000:
            raise ValueError("need 0 <= sequence_offset < sequence_step <= 10000")
        self.code = fixmedins_code
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._offset = sequence_offset
        self._step = sequence_step
        self._second: dt.datetime | None = None
        self._seq = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            now = self._clock().astimezone(CST).replace(microsecond=0)
            if self._second is None or now > self._second:
                self._second, self._seq = now, self._offset
            else:
                self._seq += self._step
                if self._seq > 9999:
                    self._second, self._seq = self._second + dt.timedelta(seconds=1), self._offset
            return f"{self.code}{self._second.strftime('%Y%m%d%H%M%S')}{self._seq:04d}"


def generator_for(fixmedins_code: str) -> MsgIdGenerator:
    with _REGISTRY_LOCK:
        gen = _GENERATORS.get(fixmedins_code)
        if gen is None:
            gen = _GENERATORS[fixmedins_code] = MsgIdGenerator(fixmedins_code)
        return gen
