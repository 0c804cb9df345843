"""Which failed calls keep their daily slot: the customer's own bad requests do (Bedrock's
400 and 404), so repeating one cannot reach Bedrock without bound; the operator's and
AWS's faults (403, 429, 5xx, timeouts) are given back. None is billed."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ParamValidationError, ReadTimeoutError

from bedrock_billing.core import schema
from bedrock_billing.core.models import normalise_model_id
from bedrock_billing.proxy.auth import Customer
from bedrock_billing.proxy.meter import Meter
from tests import proxy_support
from tests.proxy_support import HAIKU, put_customer, usage_items

aws_env = proxy_support.aws_env  # fixtures
world = proxy_support.world


def bedrock_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "InvokeModel")


CUSTOMER_FAULTS = {
    "ValidationException": bedrock_error("ValidationException"),
    "ResourceNotFoundException": bedrock_error("ResourceNotFoundException"),
    "ParamValidationError": ParamValidationError(report="Unknown parameter in input"),
}
OTHER_FAULTS = {
    "AccessDeniedException": bedrock_error("AccessDeniedException"),
    "ThrottlingException": bedrock_error("ThrottlingException"),
    "ServiceUnavailableException": bedrock_error("ServiceUnavailableException"),
    "ModelStreamErrorException": bedrock_error("modelStreamErrorException"),
    "read timeout": ReadTimeoutError(endpoint_url="https://bedrock"),
}


def admit_once(w, limit: int = 3):
    cid = put_customer(w.ddb, w.tables, daily_request_limit=limit)
    meter = Meter(lambda: w.ddb, w.tables.usage, sleep=lambda s: None)
    customer = Customer(cid, "active", daily_request_limit=limit)
    admission = meter.admit(customer, normalise_model_id(HAIKU), None, w.clock())
    return meter, customer, admission


def counters(w, cid):
    items = usage_items(w.ddb, w.tables, cid)
    now = w.clock()
    meter = items[schema.meter_key(now)]
    day = items.get(schema.day_key(now, HAIKU), {})
    return meter.get(schema.day_attribute(now)), day


@pytest.mark.parametrize("error", CUSTOMER_FAULTS.values(), ids=list(CUSTOMER_FAULTS))
def test_a_failure_the_customer_caused_keeps_its_daily_slot(world, error):
    meter, customer, admission = admit_once(world)
    meter.record_error(admission, error)
    admitted, day = counters(world, customer.customer_id)
    assert admitted == 1
    assert day == {"errors": 1}  # counted, not billed


@pytest.mark.parametrize("error", OTHER_FAULTS.values(), ids=list(OTHER_FAULTS))
def test_a_failure_of_aws_or_the_operator_is_given_back(world, error):
    meter, customer, admission = admit_once(world)
    meter.record_error(admission, error)
    admitted, day = counters(world, customer.customer_id)
    assert admitted == 0
    assert day == {"errors": 1}


def test_repeated_bad_requests_stop_at_the_daily_limit(world):
    meter, customer, admission = admit_once(world, limit=3)
    meter.record_error(admission, CUSTOMER_FAULTS["ValidationException"])
    reached = 1
    for _ in range(10):
        try:
            again = meter.admit(customer, normalise_model_id(HAIKU), None, world.clock())
        except Exception as exc:  # the daily limit's refusal
            assert getattr(exc, "code", None) == "daily_request_limit_exceeded"
            break
        reached += 1
        meter.record_error(again, CUSTOMER_FAULTS["ValidationException"])
    assert reached == 3  # the fourth bad request never reaches Bedrock
