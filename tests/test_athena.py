"""Athena through pyathena (against moto): the SQL and parameters sent, errors, progress.

moto runs no SQL, so what is sent is checked here and executed for real by DuckDB: the
query text captured on its way to Athena is the one the local engine runs.
"""

from __future__ import annotations

from datetime import date

import pytest
from botocore.awsrequest import AWSResponse
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

from bedrock_billing.core.errors import AwsError, InvalidInput
from bedrock_billing.core.logschema import USAGE_BY_CUSTOMER_SQL, USAGE_COLUMNS
from bedrock_billing.core.timeutil import FixedClock
from bedrock_billing.services.usage_reports import usage_report
from bedrock_billing.stores.athena import AthenaLogStore, trino_literal
from bedrock_billing.stores.localsql import LocalLogStore, LocalSqlEngine
from tests.usage_helpers import REGION, generate, write_local_log

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 31)
HOSTILE = "x' OR '1'='1"
CLOCK = FixedClock("2026-11-02T08:00:00Z")


@pytest.fixture
def aws(moto_session):
    moto_session.client("s3").create_bucket(Bucket="athena-results")
    yield moto_session
    state_manager.unset_transition("athena::execution")


class Sent:
    """Captures every StartQueryExecution's parameters as botocore is about to send them."""

    def __init__(self, sess):
        self.calls: list[dict] = []
        sess.events.register("before-parameter-build.athena.StartQueryExecution", self._seen)

    def _seen(self, params, **_):
        self.calls.append(dict(params))


def _store(sess, **kwargs) -> AthenaLogStore:
    kwargs.setdefault("results_location", "s3://athena-results/q/")
    return AthenaLogStore(session=sess, database="billing_test", poll_interval=0, **kwargs)


def _seed(rows: list[tuple]) -> None:
    """Queue a result set for moto's next query, typed as Athena types the usage query."""
    info = [
        {"Name": c, "Type": "varchar" if i < 3 else "bigint"} for i, c in enumerate(USAGE_COLUMNS)
    ]
    data = [{"Data": [{"VarCharValue": c} for c in USAGE_COLUMNS]}]
    data += [{"Data": [{"VarCharValue": str(v)} for v in row]} for row in rows]
    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(QueryResults(data, info))


def test_trino_literals_quote_strings_and_double_their_quotes():
    assert trino_literal(HOSTILE) == "'x'' OR ''1''=''1'"
    assert trino_literal("2026-10-01") == "'2026-10-01'"
    assert trino_literal(date(2026, 10, 1)) == "DATE '2026-10-01'"
    assert (
        trino_literal(5) == "5" and trino_literal(None) == "NULL" and trino_literal(True) == "TRUE"
    )
    with pytest.raises(InvalidInput):
        trino_literal(1.5)


def test_the_sql_sent_is_the_constant_and_the_values_are_parameters(aws):
    aws.client("athena").create_work_group(
        Name="bb-wg",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/wg/"}},
    )
    sent = Sent(aws)
    store = _store(aws, workgroup="bb-wg")
    assert store.read_usage(FIRST, LAST, [HOSTILE]) == {}
    (call,) = sent.calls
    assert call["QueryString"] is not None and call["QueryString"] == USAGE_BY_CUSTOMER_SQL
    assert HOSTILE not in call["QueryString"]
    assert call["ExecutionParameters"] == [
        "'2026-09-30'", "'2026-11-01'", "'2026-10-01'", "'2026-10-31'", "'x'' OR ''1''=''1'",
    ]  # fmt: skip
    assert call["WorkGroup"] == "bb-wg"
    assert call["QueryExecutionContext"]["Database"] == "billing_test"
    assert call["ResultConfiguration"]["OutputLocation"] == "s3://athena-results/q/"
    # moto recorded the same parameters on the execution, untouched.
    execution = aws.client("athena").get_query_execution(QueryExecutionId=store.queries[0])
    assert execution["QueryExecution"]["ExecutionParameters"] == call["ExecutionParameters"]


def test_the_service_rejects_a_hostile_id_before_any_query(aws):
    sent = Sent(aws)
    with pytest.raises(InvalidInput, match="UUID"):
        usage_report(_store(aws), [HOSTILE], FIRST, LAST, clock=CLOCK)
    assert sent.calls == []


def test_the_captured_sql_runs_in_duckdb_and_its_answer_reads_back_through_athena(aws, tmp_path):
    gen = generate(seed=11)
    write_local_log(gen, tmp_path)
    cid = gen.customers[1]
    sent = Sent(aws)
    local = LocalLogStore(tmp_path)
    expected = local.read_usage(FIRST, LAST, [cid])
    # What DuckDB executed is exactly what goes to Athena, values aside (literals there).
    sql, params = local.last_engine.executed[-1]
    records = LocalSqlEngine(tmp_path).query(sql, params)
    _seed(records)
    got = _store(aws).read_usage(FIRST, LAST, [cid])
    (call,) = sent.calls
    assert call["QueryString"] == sql
    assert call["ExecutionParameters"] == [trino_literal(p) for p in params]
    assert got == expected and got[cid] == gen.expected_rows(cid, FIRST, LAST)


def test_progress_is_reported_while_the_query_runs(aws):
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 1})
    messages = []
    _store(aws).read_usage(FIRST, LAST, None, progress=lambda d, t, m: messages.append((t, m)))
    assert len(messages) >= 2
    assert all(total is None for total, _ in messages)  # a spinner: no known total
    assert "running" in messages[0][1] and "succeeded" in messages[-1][1]


def _answer_state(sess, state: str, reason: str | None):
    def reply(model, **_):
        status = {"State": state}
        if reason:
            status["StateChangeReason"] = reason
        parsed = {
            "QueryExecution": {
                "QueryExecutionId": "q-1",
                "Query": "SELECT ...",
                "StatementType": "DML",
                "Status": status,
            }
        }
        return AWSResponse("https://athena", 200, {}, None), parsed

    sess.events.register("before-call.athena.GetQueryExecution", reply)


def test_a_failed_query_is_a_clear_aws_error(aws):
    _answer_state(aws, "FAILED", "TABLE_NOT_FOUND: line 19:6: Table 'usage_log' does not exist")
    with pytest.raises(AwsError, match=r"Athena query q-1 failed: TABLE_NOT_FOUND") as info:
        _store(aws).read_usage(FIRST, LAST, None)
    assert info.value.exit_code == 3


def test_a_cancelled_query_says_so(aws):
    _answer_state(aws, "CANCELLED", None)
    with pytest.raises(AwsError, match="Athena query q-1 was cancelled"):
        _store(aws).read_usage(FIRST, LAST, None)


def test_athena_needs_a_workgroup_or_a_results_location():
    with pytest.raises(InvalidInput, match="workgroup"):
        AthenaLogStore(database="d")
    with pytest.raises(InvalidInput, match="results location"):
        AthenaLogStore(database="d", results_location="bucket/prefix")


def test_a_refused_query_prints_no_traceback_of_pyathena(aws, monkeypatch, capsys):
    # pyathena logs a refused StartQueryExecution with logger.exception; with no logging
    # configured (the CLI's case) Python's last-resort handler printed the whole traceback
    # to stderr above our one-line error.
    import logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as in the CLI: none
    with pytest.raises(AwsError, match="WorkGroup"):
        _store(aws, workgroup="missing", results_location=None).read_usage(FIRST, LAST, None)
    assert "Traceback" not in capsys.readouterr().err
