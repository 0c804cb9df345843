"""One day of one customer's usage of one model: the row every report and invoice reads.

Kept minimal and free of pricing imports so stores, the proxy and reports can share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The counters a row carries, in the order reports show them.
METRICS: tuple[str, ...] = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
)
TOKEN_METRICS: tuple[str, ...] = METRICS[1:]


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Billable usage of one model on one UTC day (counts are whole numbers, never negative)."""

    day: date
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0

    def counts(self) -> tuple[int, int, int, int, int]:
        """The counters in ``METRICS`` order."""
        return (
            self.requests,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_input_tokens,
            self.cache_write_input_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
        )
