"""The error types every layer raises, and the exit code each one maps to.

One hierarchy, so the CLI turns any of them into one ``Error: ...`` line and the
documented exit code in one place, and the proxy into one JSON error.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DOMAIN = 1  # not found, refused, invalid state
EXIT_USAGE = 2  # bad option or value
EXIT_AWS = 3  # AWS, credentials or network
EXIT_PARTIAL = 4  # some items of an --all run failed
EXIT_DIFFERENCES = 5  # reconcile found differences
EXIT_NOT_FINAL = 6  # reconcile --against cur: AWS has not closed the period's bill yet


class BillingError(Exception):
    """Base of every error the product raises on purpose. Its text is safe to show."""

    exit_code = EXIT_DOMAIN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InvalidInput(BillingError):
    """A value given by the user is malformed (date, email, duration, token, id)."""

    exit_code = EXIT_USAGE


class NotFound(BillingError):
    """A customer, invoice or other record does not exist."""


class Conflict(BillingError):
    """The record is in a state that forbids the operation (suspended, finalized...)."""


class AwsError(BillingError):
    """AWS refused or could not be reached: credentials, network, throttling, missing table."""

    exit_code = EXIT_AWS


class PartialFailure(BillingError):
    """An --all run where some items failed and others succeeded."""

    exit_code = EXIT_PARTIAL
