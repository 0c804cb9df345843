"""The sandbox's notifier: the deployed notifier's engine, run in process on the usage
table's METER# changes (sandbox/meterstream.py), woken by each request's log line.

A worker thread does the work, so a request never waits for a webhook; ``drain()`` runs
the same pump at once, for tests and for a clean stop.
"""

from __future__ import annotations

import threading


class NotifierPump:
    def __init__(self, stream, notifier):
        self.stream, self.notifier = stream, notifier
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._stopping = False
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)

    def start(self) -> NotifierPump:
        self._thread.start()
        return self

    def kick(self, _record=None) -> None:
        self._wake.set()

    def drain(self) -> list[dict]:
        """Pump now; the events fired."""
        with self._lock:
            try:
                return self.stream.pump(self.notifier)
            except Exception as exc:  # kept for a look; the sandbox keeps serving
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return []

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            self.drain()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
