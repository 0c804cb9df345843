"""A fake AWS Bedrock Runtime endpoint: the test double the sandbox, the demo and the tests
call instead of Bedrock. ``server`` does the HTTP, ``models`` parses requests and makes the
usage, ``shapes`` builds the answers, ``faults`` injects errors. See docs/fake-bedrock.md."""

from .server import ERRORS, FAULT_KINDS, STREAM_FAULTS, FakeBedrock, fault_marker

__all__ = ["ERRORS", "FAULT_KINDS", "STREAM_FAULTS", "FakeBedrock", "fault_marker"]
