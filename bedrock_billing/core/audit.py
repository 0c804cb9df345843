"""The audit trail as data: records chained by hash, secrets removed, and the check of a chain.

Pure: the store appends and reads, the service decides who and what. A record's ``hash`` is
the SHA-256 of its canonical JSON (without ``hash``), which includes ``prev_hash``, the hash
of the record before it; the chain's head (the last sequence number and hash) is kept in an
item apart, so deleting the newest records is seen too (a chain alone cannot show that).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
SECRET_FIELDS = ("token", "secret", "password")
_HASH_SUFFIX = "_hash"
_SECRET_OPTIONS = ("--token",)


def _names_a_secret(name: str) -> bool:
    """``signing_secret``, ``secret_ciphertext``, ``admin_password``: dropped as ``secret``
    is (a display prefix such as ``token_prefix`` is kept)."""
    return name.endswith(("_secret", "_password", "_ciphertext")) or name.startswith("secret_")


def scrub(value: Any) -> Any:
    """A value with every secret removed: token fields and token hashes are dropped (a
    display prefix stays)."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            name = str(key).lower()
            if name in SECRET_FIELDS or name.endswith(_HASH_SUFFIX) or _names_a_secret(name):
                continue
            out[str(key)] = scrub(item)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def scrub_argv(argv: Iterable[str]) -> str:
    """The command line with the values of secret options replaced by ``***``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        head, eq, _ = arg.partition("=")
        if head in _SECRET_OPTIONS:
            if eq:
                out.append(f"{head}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        if arg.startswith("bbk_"):  # a token pasted where an option's value should be
            out.append("***")
            continue
        out.append(arg)
    return " ".join(out)


def canonical(record: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def seal(record: dict[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """The record with its place in the chain and its own hash."""
    sealed = {**record, "seq": seq, "prev_hash": prev_hash}
    sealed["hash"] = record_hash(sealed)
    return sealed


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    records: int
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "problems": self.problems}


def verify_chain(records: list[Mapping[str, Any]], head: Mapping[str, Any] | None) -> ChainReport:
    """Check ``records`` (in sequence order) and the head; each problem names the record."""
    problems: list[str] = []
    expected_prev = GENESIS
    expected_seq = 1
    for record in records:
        seq = record.get("seq")
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                missing = ", ".join(str(n) for n in range(expected_seq, seq))
                problems.append(f"record {missing} is missing (deleted)")
            else:
                problems.append(f"record {seq} is out of sequence")
        if record.get("hash") != record_hash(record):
            problems.append(f"record {seq} was edited: its hash does not match its contents")
        elif record.get("prev_hash") != expected_prev:
            problems.append(f"record {seq} does not follow the record before it")
        expected_prev = str(record.get("hash"))
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    last_seq = expected_seq - 1
    if head is None:
        if records:
            problems.append("the chain's head is missing")
    else:
        if head.get("seq") != last_seq:
            if isinstance(head.get("seq"), int) and head["seq"] > last_seq:
                missing = ", ".join(str(n) for n in range(last_seq + 1, head["seq"] + 1))
                problems.append(f"record {missing} is missing (deleted after the last kept)")
            else:
                problems.append(
                    f"the head names record {head.get('seq')}, the chain ends at {last_seq}"
                )
        elif records and head.get("hash") != records[-1].get("hash"):
            problems.append(f"record {last_seq} differs from the head's copy of its hash")
    return ChainReport(not problems, len(records), problems)
