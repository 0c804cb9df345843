"""Write the CLI's configuration file after a deploy: one TOML table per stage.

``bedrock_billing/config.py`` reads the file; this module only updates one stage's table
and keeps the others (and their order) as they were. Values are strings, written with
TOML's basic-string escapes, so the file round-trips through ``tomllib``.
"""

from __future__ import annotations

import os
from pathlib import Path

from bedrock_billing.config import FILE_KEYS, read_config_file
from bedrock_billing.config import config_path as default_config_path  # noqa: F401

# The keys a deploy writes, in the order they appear in the file: the config file's keys
# less the ones only an operator sets.
STAGE_KEYS = tuple(
    key for key in FILE_KEYS if key not in ("profile", "endpoint_url", "output", "price_book")
)


def _quote(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    if name and all(c.isalnum() or c in "-_" for c in name):
        return name
    return _quote(name)


def _dump(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _quote(str(value))


def _table(lines: list[str], header: str, table: dict) -> None:
    if lines:
        lines.append("")
    lines.append(f"[{header}]")
    known = [k for k in STAGE_KEYS if k in table]
    other = [k for k in table if k not in STAGE_KEYS and not isinstance(table[k], dict)]
    for key in known + other:
        lines.append(f"{_key(key)} = {_dump(table[key])}")
    for key, sub in table.items():
        if isinstance(sub, dict):
            _table(lines, f"{header}.{_key(key)}", sub)


def render(config: dict) -> str:
    """TOML text for ``config``: top-level keys, then one table per stage (and any
    sub-tables it has). Lists and dates are not expected in this file."""
    lines: list[str] = [
        f"{_key(k)} = {_dump(v)}" for k, v in config.items() if not isinstance(v, dict)
    ]
    for stage, table in config.items():
        if isinstance(table, dict):
            _table(lines, _key(stage), table)
    return "\n".join(lines) + "\n"


def write_stage_config(path: Path | str, stage: str, values: dict) -> Path:
    """Set ``[stage]``'s keys to ``values`` (None drops a key), keep the other stages.

    Written to a temporary file and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    config = read_config_file(path)
    table = dict(config.get(stage) or {})
    for key, value in values.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    config[stage] = table
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(config), encoding="utf-8")
    os.replace(tmp, path)
    return path
