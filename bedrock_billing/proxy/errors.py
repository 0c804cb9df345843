"""Every refusal the proxy makes, as one typed error rendered by one function.

An error carries an HTTP status, a stable machine code, a message safe to show (never an
exception's text, never a token), and optionally which limit refused and when to retry.
"""

from __future__ import annotations

from ..core.customers import RECORD_INVALID_CODE


class ProxyError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        limit: str | None = None,
        retry_after: int | None = None,
        billable_error: bool = False,
        aws_code: str | None = None,
        aws_status: int | None = None,
        aws_message: str | None = None,
        undelivered: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.limit = limit
        self.retry_after = retry_after
        # True when the request was admitted and the failure came after (Bedrock's error or
        # a broken stream): logged as bedrock_error rather than proxy_refused.
        self.billable_error = billable_error
        # Bedrock's own error, for the wire APIs that pass it through unchanged (its
        # exception name, HTTP status and wording, with ARNs and account ids masked).
        self.aws_code = aws_code
        self.aws_status = aws_status
        self.aws_message = aws_message
        # True when Bedrock had the request and may have generated (and AWS billed) an
        # answer the client never got: a stop at the deadline, a read timeout. Recorded with
        # its usage as an undelivered generation, not refunded as an error (docs/proxy.md).
        self.undelivered = undelivered

    def body(self, request_id: str) -> dict:
        error = {"code": self.code, "message": self.message, "request_id": request_id}
        if self.limit:
            error["limit"] = self.limit
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"error": error}


def bad_request(code: str, message: str) -> ProxyError:
    return ProxyError(400, code, message)


# Authentication (401) and authorisation (403) codes, one per cause so that an operator
# reading the log (and a customer reading the answer) knows which one it was.
MISSING_TOKEN = "missing_token"
INVALID_AUTH_SCHEME = "invalid_auth_scheme"
INVALID_TOKEN = "invalid_token"
TOKEN_REVOKED = "token_revoked"
TOKEN_EXPIRED = "token_expired"
TOKEN_GRACE_EXPIRED = "token_grace_expired"
CUSTOMER_SUSPENDED = "customer_suspended"
MODEL_NOT_ALLOWED = "model_not_allowed"
MODEL_NOT_PRICED = "model_not_priced"
# 503: the customer's or token's stored item breaks docs/schema.md (the operator's fault);
# refused until corrected, never served unlimited. The stack's alarm counts these.
CUSTOMER_RECORD_INVALID = RECORD_INVALID_CODE

NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"

# Limits (429)
DAILY_LIMIT = "daily_request_limit_exceeded"
MINUTE_LIMIT = "requests_per_minute_exceeded"
TOKEN_LIMIT = "monthly_token_limit_exceeded"
BUDGET_LIMIT = "monthly_budget_exceeded"
