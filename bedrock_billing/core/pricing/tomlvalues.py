"""Strict readers for values of a parsed TOML document, each error naming file and key.

Money and percentages must be strings (a TOML float is a binary approximation); counts are
integers; tables refuse unknown keys.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import InvalidInput
from ..money import to_decimal, to_money, to_price


def _where(source: str, path: str) -> str:
    return f"{source}: {path}" if path else source


def _check_keys(table: Any, allowed: set[str], source: str, path: str) -> dict:
    if not isinstance(table, dict):
        raise InvalidInput(f"{_where(source, path)}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InvalidInput(
            f"{_where(source, path)}: unknown key {unknown[0]!r} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    return table


def _decimal_string(value: Any, source: str, path: str, kind: str) -> Decimal:
    where = _where(source, path)
    if isinstance(value, float):
        raise InvalidInput(
            f"{where}: {value!r} is a TOML float; write {kind} as a string "
            f'(e.g. "{value}") so it stays an exact decimal'
        )
    if not isinstance(value, str):
        raise InvalidInput(f'{where}: {kind} must be a string such as "0.25", got {value!r}')
    if kind == "a price":
        return to_price(value, where)
    if kind == "money":
        result = to_money(value, where)
    else:
        result = to_decimal(value, where)
    if result < 0:
        raise InvalidInput(f"{where}: {value!r} is negative")
    return result


def _count(value: Any, source: str, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{_where(source, path)}: expected a whole number, got {value!r}")
    if value < minimum:
        raise InvalidInput(f"{_where(source, path)}: {value} is below {minimum}")
    return value


def _text(value: Any, source: str, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{_where(source, path)}: expected a non-empty string")
    return value.strip()
