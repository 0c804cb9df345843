"""The one DynamoDB item codec: plain Python values <-> DynamoDB attribute values.

Pure (no boto3): the stores (CLI side) and the proxy (in the Lambda zip, which carries the
core) read and write items through these two functions, so both see the same values.

- ``S`` -> ``str``, ``BOOL`` -> ``bool``, ``NULL`` -> ``None``, ``B`` -> ``bytes``;
- ``N`` -> ``int`` when integral, else ``Decimal`` (never a float);
- ``L`` -> ``list``, ``M`` -> ``dict``, ``SS``/``NS``/``BS`` -> a sorted ``list``.

An attribute value that is not exactly one of these shapes raises :class:`ItemError`, so a
reader that must fail closed (the proxy's token lookup) can tell a damaged item apart.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 to 9.9999E+125.
_MAX_DIGITS = 38


class ItemError(ValueError):
    """An attribute value that is not a well-formed DynamoDB attribute value."""


def _number_text(value: int | Decimal) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ItemError(f"{value} cannot be stored as a DynamoDB number")
        text = format(value.normalize(), "f") if value != 0 else "0"
    else:
        text = str(value)
    if len(text.lstrip("-").replace(".", "").lstrip("0")) > _MAX_DIGITS:
        raise ItemError("a DynamoDB number holds at most 38 significant digits")
    return text


def serialize(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value (floats are refused: not exact)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        return {"N": _number_text(value)}
    if isinstance(value, float):
        raise ItemError("floats are not stored: use int, Decimal or a decimal string")
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, (set, frozenset)):
        if not value:
            raise ItemError("DynamoDB sets cannot be empty")
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in value):
            return {"NS": sorted(_number_text(v) for v in value)}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": sorted(bytes(v) for v in value)}
        raise ItemError("a set must hold only strings, only numbers or only bytes")
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    raise ItemError(f"cannot store a {type(value).__name__} in DynamoDB")


def _number(text: Any) -> int | Decimal:
    if not isinstance(text, str):
        raise ItemError("a number attribute must hold its digits as a string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ItemError(f"{text[:40]!r} is not a number") from None
    if not value.is_finite():
        raise ItemError(f"{text[:40]!r} is not a finite number")
    return int(value) if value == value.to_integral_value() else value


def _bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):  # the low-level JSON form is base64 text
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ItemError("a binary attribute is not valid base64") from None
    raise ItemError("a binary attribute must hold bytes")


def deserialize(attribute: Any) -> Any:
    """One DynamoDB attribute value as a plain Python value."""
    if not isinstance(attribute, Mapping) or len(attribute) != 1:
        raise ItemError("an attribute value must have exactly one type")
    ((kind, raw),) = attribute.items()
    if kind == "S":
        if not isinstance(raw, str):
            raise ItemError("a string attribute must hold a string")
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "BOOL":
        if not isinstance(raw, bool):
            raise ItemError("a boolean attribute must hold true or false")
        return raw
    if kind == "NULL":
        return None
    if kind == "B":
        return _bytes(raw)
    if kind == "L":
        if not isinstance(raw, list):
            raise ItemError("a list attribute must hold a list")
        return [deserialize(v) for v in raw]
    if kind == "M":
        if not isinstance(raw, Mapping):
            raise ItemError("a map attribute must hold a map")
        return {str(k): deserialize(v) for k, v in raw.items()}
    if kind in ("SS", "NS", "BS"):
        if not isinstance(raw, list):
            raise ItemError("a set attribute must hold a list")
        if kind == "SS":
            if not all(isinstance(v, str) for v in raw):
                raise ItemError("a string set must hold strings")
            return sorted(raw)
        if kind == "NS":
            return sorted(_number(v) for v in raw)
        return sorted(_bytes(v) for v in raw)
    raise ItemError(f"unknown attribute type {str(kind)[:20]!r}")


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain dict -> DynamoDB item; ``None`` values are left out (absent = unset)."""
    return {k: serialize(v) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB item -> plain dict (integral numbers as int, sets as sorted lists)."""
    if not isinstance(item, Mapping):
        raise ItemError("an item must be a map of attribute values")
    return {str(k): deserialize(v) for k, v in item.items()}
