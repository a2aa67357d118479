"""What one request may put into the audit trail: every text column capped and marked, ALLOW decisions
folded per policy and hook, other verdicts kept one by one up to a budget and folded beyond it, the
governing decision always on a row of its own, and stored content bounded in the queue."""

from __future__ import annotations

from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.bounds import DECISION_CAPS, REQUEST_CAPS, cap_text, decision_entries, request_entry
from capsem_proxy.audit.queued import CONTENT_NOT_KEPT, QueuedAuditSink
from capsem_proxy.audit.rows import COLUMN_NAMES
from capsem_proxy.decisions import Decision, Verdict, strictest
from tests.audit.stores import KEY, context, decision, request

DECISION_COLUMNS = COLUMN_NAMES["decisions"]


def _rows(entries) -> list[dict]:
    return [dict(zip(COLUMN_NAMES[table], values, strict=True)) for table, values in entries]


def _tools(count: int, verdict: Verdict = Verdict.ALLOW, policy: str = "Debug") -> list[Decision]:
    return [decision(verdict, policy, hook="on_tool_call", subject=f"tool_{index}", latency_ms=0.01,
                     reason=f"reason {index % 3}") for index in range(count)]


def test_cut_text_keeps_its_cap_and_says_how_long_it_was():
    assert cap_text("short", 10) == "short"
    cut = cap_text("x" * 1_000_000, 256)
    assert len(cut) == 256 and cut.endswith("…[1000000 chars]") and cut.startswith("xxx")
    assert cap_text(None, 5) == "" and cap_text(12345678, 20) == "12345678" and cap_text(12345678, 5) == "12345"


def test_every_text_column_of_a_request_row_is_capped():
    huge = "m" * 1_000_000
    record = request(model=huge, route="/" + huge, reason=huge, session_id=huge, agent_id=huge, tenant_id=huge,
                     prompt=huge, answer="short answer")
    table, values = request_entry(record, 65_536)
    row = dict(zip(COLUMN_NAMES[table], values, strict=True))
    for column, limit in REQUEST_CAPS.items():
        assert len(row[column]) <= limit, column
    assert row["model"].endswith("…[1000000 chars]") and len(row["model"]) == REQUEST_CAPS["model"]
    assert len(row["prompt"]) == 65_536 and row["prompt"].endswith("…[1000000 chars]")
    assert row["answer"] == "short answer"


def test_a_usual_request_row_is_the_record_itself():
    record = request(model="gpt-4o-mini", route="/v1/chat/completions", status=200)
    assert request_entry(record, 65_536)[1] == tuple(getattr(record, name) for name in COLUMN_NAMES["requests"])


def test_every_text_column_of_a_decision_row_is_capped():
    huge = "t" * 500_000
    ctx = context(model=huge, session_id=huge, agent_id=huge)
    noisy = decision(Verdict.BLOCK, huge, hook=huge, reason=huge, details=huge, subject=huge, decision_id=huge)
    [row] = _rows(decision_entries(ctx, [noisy], 50))
    for column, limit in DECISION_CAPS.items():
        assert len(row[column]) <= limit, column
    assert row["details"].endswith("…[500000 chars]") and row["count"] == 1 and row["verdict"] == "BLOCK"


def test_allow_decisions_of_one_policy_on_one_hook_fold_into_one_row():
    model_call = decision(Verdict.ALLOW, "Debug", latency_ms=0.02)
    rows = _rows(decision_entries(context(), [model_call, *_tools(19_000)], 50))
    assert [(row["hook"], row["count"]) for row in rows] == [("on_model_call", 1), ("on_tool_call", 19_000)]
    folded = rows[1]
    assert folded["verdict"] == "ALLOW" and folded["policy"] == "Debug"
    assert folded["subject"].startswith("tool_0, tool_1, tool_2") and folded["subject"].endswith(" more)")
    assert len(folded["subject"]) <= DECISION_CAPS["subject"]
    assert folded["details"].startswith("19000 ALLOW decisions of this policy on this hook, folded into one row")
    assert abs(folded["latency_ms"] - 190.0) < 1e-6  # the policy's time on all of them


def test_non_allow_decisions_keep_their_own_rows_within_the_budget():
    blocks = _tools(3, Verdict.BLOCK)
    rows = _rows(decision_entries(context(), [*_tools(100), *blocks], 50))
    assert [(row["verdict"], row["count"]) for row in rows] == [("ALLOW", 100), ("BLOCK", 1), ("BLOCK", 1),
                                                                 ("BLOCK", 1)]
    assert [row["decision_id"] for row in rows[1:]] == [block.decision_id for block in blocks]


def test_past_the_budget_the_governing_and_most_severe_decisions_keep_rows_and_the_rest_fold():
    logs = _tools(30, Verdict.LOG, "Logger")
    blocks = _tools(200, Verdict.BLOCK)
    governing = strictest([*logs, *blocks])
    ctx = context()
    rows = _rows(decision_entries(ctx, [*logs, *blocks], 50))
    individual = [row for row in rows if row["count"] == 1]
    folded = [row for row in rows if row["count"] > 1]
    assert len(individual) == 50 and all(row["verdict"] == "BLOCK" for row in individual)
    assert individual[0]["decision_id"] == governing.decision_id
    assert sorted((row["verdict"], row["count"]) for row in folded) == [("BLOCK", 150), ("LOG", 30)]
    assert sum(row["count"] for row in rows) == 230  # nothing dropped: every decision is counted
    # The request's budget is spent: later decisions (its answer) fold beyond the governing one.
    later = _rows(decision_entries(ctx, _tools(5, Verdict.BLOCK, "Answers"), 50))
    assert [(row["verdict"], row["count"]) for row in later] == [("BLOCK", 1), ("BLOCK", 4)]


def test_the_memory_store_folds_and_caps_like_the_durable_ones():
    sink = open_audit_sink("memory://", KEY)
    sink.record(context(model="x" * 10_000), _tools(500))
    [row] = sink.decisions
    assert row["count"] == 500 and len(row["model"]) == DECISION_CAPS["model"]


def test_stored_content_held_in_the_queue_is_bounded():
    class NeverWrites:
        description = "never://"

    sink = QueuedAuditSink(NeverWrites(), key=KEY, max_content_chars=2000, queue_max_content_chars=5000)  # type: ignore[arg-type]
    for index in range(4):
        sink.record_request(request(f"r{index}", prompt="p" * 1500, answer="a" * 1000))
    prompts = [values[COLUMN_NAMES["requests"].index("prompt")] for _, values in sink._queue]
    assert prompts[:2] == ["p" * 1500] * 2 and prompts[2:] == [CONTENT_NOT_KEPT] * 2
    assert sink._content_queued <= 5000
