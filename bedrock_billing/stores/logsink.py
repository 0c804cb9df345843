"""Writes per-request log lines as JSON lines, partitioned by arrival date (``dt=``).

The layout is the one Athena's table reads (core/logschema.py) and the local engine copies:
``<prefix>dt=YYYY-MM-DD/<unique>.jsonl``. The partition is the date the line *arrives* at
the sink (as a delivery stream does it), not the line's own timestamp: a request admitted
at 23:59:59 can land in the next day's folder, and the queries allow for that.

Used by the sandbox's local proxy server (S3 in moto) and by tests (a local folder). In a
deployment the proxy's lines reach S3 through the delivery pipeline the template builds.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..core.logschema import FIELD_NAMES, LOG_PARTITION_KEY
from ..core.timeutil import Clock, system_clock

SANDBOX_MARKER_KEY = "_bedrock_billing_sandbox.json"
"""An object at the root of the log bucket that tells the CLI to use the local engine."""


def is_usage_line(record: Mapping[str, object]) -> bool:
    """A usage line has an ``event_type``; other records (the proxy's EMF metric lines) are
    left out, as the deployed pipeline's subscription filter (it names the event types) does."""
    return bool(record.get("event_type"))


def serialize_line(line: Mapping[str, object]) -> str:
    """One log line as compact JSON, fields in schema order, absent fields as null.

    An unknown field is a programming error (the schema is written once): it raises rather
    than reaching a table that would silently ignore it.
    """
    unknown = set(line) - set(FIELD_NAMES)
    if unknown:
        raise ValueError(f"log line has fields outside the schema: {sorted(unknown)}")
    return json.dumps({name: line.get(name) for name in FIELD_NAMES}, separators=(",", ":"))


def partition_prefix(prefix: str, day: str) -> str:
    """``<prefix>dt=YYYY-MM-DD/``; ``prefix`` is empty or ends with ``/``."""
    return f"{normalise_prefix(prefix)}{LOG_PARTITION_KEY}={day}/"


def normalise_prefix(prefix: str) -> str:
    prefix = (prefix or "").strip("/")
    return f"{prefix}/" if prefix else ""


def _object_name(clock: Clock) -> str:
    # Sortable by arrival, unique across concurrent writers.
    return f"{clock().strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex}.jsonl"


class S3LogSink:
    """Buffers lines and writes them to S3, one object per flush and arrival date.

    ``batch_size=1`` (the default) writes every line at once; a larger batch trades a
    little latency for fewer objects. A failed put raises and keeps the lines buffered,
    so the caller can retry: nothing is dropped silently.
    """

    def __init__(
        self,
        s3_client,
        bucket: str,
        prefix: str = "logs/",
        *,
        clock: Clock = None,
        batch_size: int = 1,
    ):
        self._s3 = s3_client
        self.bucket = bucket
        self.prefix = normalise_prefix(prefix)
        self._clock = clock or system_clock
        self._batch_size = max(1, int(batch_size))
        self._pending: dict[str, list[str]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def write(self, line: Mapping[str, object]) -> None:
        if not is_usage_line(line):
            return
        text = serialize_line(line)
        with self._lock:
            day = self._clock().date().isoformat()
            self._pending.setdefault(day, []).append(text)
            self._count += 1
            if self._count >= self._batch_size:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        for day in sorted(self._pending):
            lines = self._pending[day]
            key = partition_prefix(self.prefix, day) + _object_name(self._clock)
            body = ("\n".join(lines) + "\n").encode()
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson"
            )
            del self._pending[day]
            self._count -= len(lines)

    def close(self) -> None:
        self.flush()

    __call__ = write  # the proxy's log_sink is a callable taking the record


class LocalLogSink:
    """Appends lines to ``<root>/dt=YYYY-MM-DD/<unique>.jsonl`` (one file per sink and day)."""

    def __init__(self, root: str | os.PathLike, *, clock: Clock = None):
        self.root = Path(root)
        self._clock = clock or system_clock
        self._name = f"{uuid.uuid4().hex}.jsonl"
        self._lock = threading.Lock()

    def write(self, line: Mapping[str, object]) -> None:
        if not is_usage_line(line):
            return
        text = serialize_line(line)
        with self._lock:
            folder = self.root / f"{LOG_PARTITION_KEY}={self._clock().date().isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / self._name, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")

    def flush(self) -> None:  # every write is already on disk
        return None

    def close(self) -> None:
        return None

    __call__ = write


def write_sandbox_marker(
    s3_client, bucket: str, *, log_prefix: str = "logs/", clock: Clock = None
) -> str:
    """Mark a log bucket as the sandbox's: the CLI then reads it with the local engine.

    Only the sandbox calls this. A deployment never has the object, so the CLI uses Athena
    there; nothing is inferred from endpoints or names.
    """
    body = {
        "engine": "local",
        "log_prefix": normalise_prefix(log_prefix),
        "written_by": "bedrock-billing sandbox",
        "created_at": (clock or system_clock)().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    s3_client.put_object(
        Bucket=bucket,
        Key=SANDBOX_MARKER_KEY,
        Body=json.dumps(body).encode(),
        ContentType="application/json",
    )
    return SANDBOX_MARKER_KEY
