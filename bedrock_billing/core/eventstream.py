"""AWS event-stream framing (``application/vnd.amazon.eventstream``), standard library only.

Bedrock streams (InvokeModelWithResponseStream, ConverseStream) send their events in this
binary framing. The proxy re-frames Bedrock's events with it for the Bedrock Runtime routes, the
fake endpoint encodes with it; the decoder is here so tests and the
sandbox can read raw frames without botocore.

One message::

    prelude   total length (uint32 BE), headers length (uint32 BE), CRC32 of those 8 bytes
    headers   per header: name length (1 byte), name, type (1 byte, 7 = string),
              value length (uint16 BE), value
    payload   bytes
    trailer   CRC32 (uint32 BE) of everything before it
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass, field

CONTENT_TYPE = "application/vnd.amazon.eventstream"

_STRING = 7
_PRELUDE = struct.Struct(">II")
_U32 = struct.Struct(">I")
# Frame overhead: 8 bytes of prelude, 4 of prelude CRC, 4 of message CRC.
_OVERHEAD = 16
# botocore refuses bigger frames; never produce one it would reject.
MAX_PAYLOAD = 16 * 1024 * 1024
MAX_HEADERS = 128 * 1024


class EventStreamFormatError(ValueError):
    """A frame that does not follow the event-stream format (bad length or CRC)."""


@dataclass(frozen=True)
class Message:
    headers: dict[str, str] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        return self.headers.get(":message-type", "")

    @property
    def event_type(self) -> str:
        return self.headers.get(":event-type", "")


def _crc(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def _encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if not 0 < len(raw_name) < 256:
            raise ValueError(f"header name length must be 1..255 bytes: {name!r}")
        if len(raw_value) > 0xFFFF:
            raise ValueError(f"header value too long: {name!r}")
        out += bytes([len(raw_name)]) + raw_name + bytes([_STRING])
        out += struct.pack(">H", len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """Frame one message. Header values are strings (type 7), the only type Bedrock sends."""
    raw_headers = _encode_headers(headers)
    if len(raw_headers) > MAX_HEADERS:
        raise ValueError("headers too large for one event-stream message")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too large for one event-stream message")
    total = _OVERHEAD + len(raw_headers) + len(payload)
    prelude = _PRELUDE.pack(total, len(raw_headers))
    head = prelude + _U32.pack(_crc(prelude)) + raw_headers + payload
    return head + _U32.pack(_crc(head))


def encode_event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """An ``event`` message, e.g. Bedrock's ``chunk`` or Converse's ``contentBlockDelta``."""
    return encode_message(
        {
            ":event-type": event_type,
            ":content-type": content_type,
            ":message-type": "event",
        },
        payload,
    )


def encode_chunk(model_chunk: dict) -> bytes:
    """InvokeModelWithResponseStream's ``chunk`` event: the model's JSON, base64 in ``bytes``."""
    raw = json.dumps(model_chunk, separators=(",", ":")).encode("utf-8")
    body = {"bytes": base64.b64encode(raw).decode("ascii")}
    return encode_event("chunk", json.dumps(body, separators=(",", ":")).encode("utf-8"))


def encode_exception(exception_type: str, message: str, **extra) -> bytes:
    """An ``exception`` message; botocore raises ``EventStreamError`` with this code.

    ``exception_type`` is the member name of the stream's union in botocore's model
    (``modelStreamErrorException``, ``throttlingException``, ...), as Bedrock sends it.
    """
    body = {"message": message, **extra}
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(body, separators=(",", ":")).encode("utf-8"),
    )


def _decode_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    pos = 0
    while pos < len(raw):
        name_len = raw[pos]
        pos += 1
        name = raw[pos : pos + name_len].decode("utf-8")
        pos += name_len
        if pos >= len(raw) or raw[pos] != _STRING:
            raise EventStreamFormatError(f"unsupported header type for {name!r}")
        pos += 1
        (value_len,) = struct.unpack_from(">H", raw, pos)
        pos += 2
        headers[name] = raw[pos : pos + value_len].decode("utf-8")
        pos += value_len
    if pos != len(raw):
        raise EventStreamFormatError("headers overrun their declared length")
    return headers


def decode_messages(data: bytes) -> tuple[list[Message], bytes]:
    """Decode every complete message in ``data``; return them and the undecoded rest.

    Feeding the rest back in front of the next bytes decodes a stream read in pieces.
    """
    messages: list[Message] = []
    pos = 0
    while len(data) - pos >= 12:
        total, headers_len = _PRELUDE.unpack_from(data, pos)
        (prelude_crc,) = _U32.unpack_from(data, pos + 8)
        if _crc(data[pos : pos + 8]) != prelude_crc:
            raise EventStreamFormatError("prelude CRC mismatch")
        if total < _OVERHEAD + headers_len:
            raise EventStreamFormatError("total length shorter than its parts")
        if len(data) - pos < total:
            break
        frame = data[pos : pos + total]
        (message_crc,) = _U32.unpack_from(frame, total - 4)
        if _crc(frame[:-4]) != message_crc:
            raise EventStreamFormatError("message CRC mismatch")
        headers = _decode_headers(frame[12 : 12 + headers_len])
        messages.append(Message(headers, frame[12 + headers_len : -4]))
        pos += total
    return messages, data[pos:]


def chunk_json(message: Message) -> dict:
    """The model's JSON chunk inside an InvokeModelWithResponseStream ``chunk`` event."""
    return json.loads(base64.b64decode(json.loads(message.payload)["bytes"]))
