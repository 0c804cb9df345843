"""AWS event-stream framing: what the fake Bedrock writes, read back by botocore and by us."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from bedrock_billing.core import eventstream


def test_botocore_reads_a_chunk_event_exactly():
    frame = eventstream.encode_chunk({"type": "message_stop", "n": 1})
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    (message,) = list(buffer)
    assert message.headers == {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.to_response_dict()["status_code"] == 200
    decoded = eventstream.chunk_json(eventstream.Message(message.headers, message.payload))
    assert decoded == {"type": "message_stop", "n": 1}


def test_exception_messages_read_as_errors_by_botocore():
    frame = eventstream.encode_exception("modelStreamErrorException", "boom")
    buffer = EventStreamBuffer()
    buffer.add_data(frame)
    (message,) = list(buffer)
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "modelStreamErrorException"
    assert message.to_response_dict()["status_code"] == 400
    assert json.loads(message.payload) == {"message": "boom"}


def test_prelude_and_message_crcs_follow_the_format():
    frame = eventstream.encode_event("x", b"payload")
    total, headers_len, prelude_crc = struct.unpack(">III", frame[:12])
    assert total == len(frame)
    assert prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert frame[12 + headers_len : -4] == b"payload"


def test_decoder_reads_a_stream_delivered_in_pieces():
    frames = b"".join(eventstream.encode_event(f"e{i}", b"p" * i) for i in range(5))
    seen, rest = [], b""
    for i in range(0, len(frames), 7):
        messages, rest = eventstream.decode_messages(rest + frames[i : i + 7])
        seen += messages
    assert rest == b""
    assert [m.event_type for m in seen] == [f"e{i}" for i in range(5)]
    assert [m.payload for m in seen] == [b"p" * i for i in range(5)]


def test_decoder_refuses_a_corrupted_frame():
    frame = bytearray(eventstream.encode_event("x", b"payload"))
    frame[-6] ^= 0xFF
    with pytest.raises(eventstream.EventStreamFormatError):
        eventstream.decode_messages(bytes(frame))


def test_unicode_header_values_and_payloads_survive():
    frame = eventstream.encode_message({":event-type": "événement"}, "données ✓".encode())
    (message,), _ = eventstream.decode_messages(frame)
    assert message.event_type == "événement"
    assert message.payload.decode() == "données ✓"
