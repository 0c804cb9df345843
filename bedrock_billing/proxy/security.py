"""Security events counted per source address in the warm container, with no DynamoDB write.

A bad token, a revoked, expired or rotated-out key, or a request from outside an allowlist
is a security event. Each container counts them per address in fixed five-minute windows
(a bounded LRU, so a flood of addresses cannot grow it); the count goes in the log line
(``security_events``), and the stack's metric filter alarms when one address reaches
``SECURITY_ALARM_THRESHOLD`` in one container's window (core/logschema.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

WINDOW_SECONDS = 300


class SecurityCounter:
    def __init__(self, size: int = 4096):
        self.size = size
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, address: str | None, now: datetime) -> int:
        """This event counted: the address's events in the current window, this one included."""
        key = address or "unknown"
        window = int(now.timestamp()) // WINDOW_SECONDS
        with self._lock:
            seen_window, seen = self._counts.get(key, (window, 0))
            total = (seen if seen_window == window else 0) + 1
            self._counts[key] = (window, total)
            self._counts.move_to_end(key)
            while len(self._counts) > self.size:
                self._counts.popitem(last=False)
            return total
