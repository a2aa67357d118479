"""The Rego policy: compiled once at load, evaluated per hook on a documented input, strictest verdict wins."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from capsem_proxy.config import ConfigError, PolicySettings
from capsem_proxy.decisions import Verdict
from capsem_proxy.exchange import Answer, Exchange, Message, ToolDefinition
from capsem_proxy.hooks import HOOK_NAMES, ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.loader import load_policies, load_policy
from capsem_proxy.policies.rego import RegoEvaluationError, RegoPolicy, event_input

GUARD = """
package capsem
import rego.v1

decision := {"verdict": "BLOCK", "reason": sprintf("prompt mentions %s", [word]), "code": "unsafe_content"} if {
    input.hook == "on_model_call"
    some word in data.forbidden
    contains(lower(input.prompt), word)
}

decision := {"verdict": "CONFIRM", "reason": "shell calls need approval"} if {
    input.hook == "on_tool_call"
    input.emitted
    input.tool.name == "shell"
}

decision := "LOG" if {
    input.hook == "on_model_response"
    contains(input.answer, "password")
}
"""
SHELL = ToolDefinition("shell", "runs a command", {"type": "object", "properties": {"command": {"type": "string"}}})


def _context(prompt="hello", tools=(SHELL,)):
    exchange = Exchange(
        "openai", "chat", model="gpt-x", system="be brief", messages=[Message("user", prompt)], tools=list(tools),
        max_output_tokens=256,
    )
    return RequestContext("req-9", "tenant-a", "openai", "chat", exchange, agent_id="agent-1", session_id="sess-2")


def _model_call(prompt):
    context = _context(prompt)
    return ModelCall(context, "gpt-x", "be brief", prompt, [])


def _policy(source=GUARD, **options):
    return RegoPolicy.from_config({"policy": source, "data": {"forbidden": ["drop table", "rm -rf"]}, **options})


async def test_a_matching_rule_blocks_with_its_reason_and_code():
    decision = await _policy().on_model_call(_model_call("Please DROP TABLE users"))
    assert decision.verdict is Verdict.BLOCK
    assert decision.details == "prompt mentions drop table"
    assert decision.reason == "unsafe_content"
    assert decision.policy == "rego" and decision.hook == "on_model_call"


async def test_an_undefined_rule_is_no_opinion():
    assert await _policy().on_model_call(_model_call("what is the weather in Paris?")) is None


async def test_an_emitted_tool_call_gets_the_tool_and_its_arguments():
    policy = _policy()
    emitted = ToolCall(_context(), SHELL, {"command": "ls"}, emitted=True)
    decision = await policy.on_tool_call(emitted)
    assert decision.verdict is Verdict.CONFIRM
    assert decision.details == "shell calls need approval"
    assert decision.reason == "policy_violation"
    offered = ToolCall(_context(), SHELL, {}, emitted=False)
    assert await policy.on_tool_call(offered) is None


async def test_a_bare_verdict_string_is_accepted():
    answer = ModelResponse(_context(), Answer(text="the password is hunter2"))
    decision = await _policy().on_model_response(answer)
    assert decision.verdict is Verdict.LOG
    assert decision.details == "Rego rule data.capsem.decision"


async def test_a_set_of_decisions_yields_the_strictest():
    source = """
package guard
import rego.v1
decisions contains {"verdict": "LOG", "reason": "long prompt"} if count(input.prompt) > 10
decisions contains {"verdict": "BLOCK", "reason": "mentions secrets"} if contains(input.prompt, "secret")
decisions contains {"verdict": "ALLOW"} if true
"""
    policy = RegoPolicy.from_config({"policy": source, "query": "data.guard.decisions"})
    decision = await policy.on_model_call(_model_call("a long prompt about a secret"))
    assert (decision.verdict, decision.details) == (Verdict.BLOCK, "mentions secrets")
    decision = await policy.on_model_call(_model_call("a long prompt about cats"))
    assert (decision.verdict, decision.details) == (Verdict.LOG, "long prompt")
    assert await policy.on_model_call(_model_call("short")) is None


def test_the_input_document_describes_each_hook():
    context = _context("hi there")
    model_call = event_input("on_model_call", ModelCall(context, "gpt-x", "be brief", "hi there", []))
    assert model_call == {
        "hook": "on_model_call", "request_id": "req-9", "tenant_id": "tenant-a", "agent_id": "agent-1",
        "session_id": "sess-2", "provider": "openai", "operation": "chat", "model": "gpt-x",
        "max_output_tokens": 256, "stream": False, "system": "be brief", "offered_tools": ["shell"],
        "prompt": "hi there", "media_texts": [], "history_tool_calls": [], "other_texts": [], "tool": None,
        "args": {}, "emitted": False, "response": {}, "answer": "", "thinking": "", "final": True,
    }
    tool_call = event_input("on_tool_call", ToolCall(context, SHELL, {"command": "ls"}, emitted=True))
    assert tool_call["tool"] == {"name": "shell", "description": "runs a command", "parameters": SHELL.parameters}
    assert (tool_call["args"], tool_call["emitted"], tool_call["prompt"]) == ({"command": "ls"}, True, "")
    tool_response = event_input("on_tool_response", ToolResponse(context, SHELL, {"stdout": "ok"}))
    assert (tool_response["tool"]["name"], tool_response["response"]) == ("shell", {"stdout": "ok"})
    answer = event_input("on_model_response", ModelResponse(context, Answer(text="done", thinking="hmm"), False))
    assert (answer["answer"], answer["thinking"], answer["final"]) == ("done", "hmm", False)


async def test_rules_read_request_wide_fields():
    source = """
package capsem
import rego.v1
decision := {"verdict": "BLOCK", "reason": "tenant not allowed on this model"} if {
    input.tenant_id == "tenant-a"
    startswith(input.model, "gpt-")
    input.max_output_tokens > 100
    "shell" in input.offered_tools
}
"""
    result = ToolResponse(_context(), SHELL, {"stdout": "x"})
    decision = await RegoPolicy.from_config({"policy": source}).on_tool_response(result)
    assert decision.details == "tenant not allowed on this model"


def test_policy_file_and_hooks_option(tmp_path):
    path = tmp_path / "guard.rego"
    path.write_text(GUARD, encoding="utf-8")
    settings = PolicySettings(
        class_path="rego", name="prompt-guard",
        options={"policy_file": str(path), "hooks": ["on_model_call"], "data": {"forbidden": ["x"]}},
    )
    loaded = load_policy(settings, "config: policies[0]")
    assert loaded.name == "prompt-guard"
    assert [hook for hook in HOOK_NAMES if loaded.implements(hook)] == ["on_model_call"]
    # The hooks wait for a worker thread: the pipeline gives each its own task and time budget.
    assert loaded.inline_hooks == frozenset()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"policy": "package capsem\ndecision := {\"verdict\": \"BLOCK\" if {"}, "policy.rego:2:"),
        ({"policy": "package capsem\ndecision := {\"verdict\": \"BLOCK\" if {"}, "this is unclosed"),
        ({"policy": "package capsem\ndecision := \"BLOCK\"", "query": "data.capsem.decison"}, "names no rule"),
        ({"policy": "package other\ndecision := \"BLOCK\""}, "names no rule"),
        ({"policy": "package capsem\ndefault decision := \"MAYBE\""}, "unknown verdict 'MAYBE'"),
        ({"policy": "package capsem\ndefault decision := 42"}, "expected a verdict string"),
        ({"policy": "package capsem\ndecision := \"BLOCK\"", "query": "capsem.decision"}, "must be a reference"),
        ({"policy": "package capsem", "policy_file": "x.rego"}, "exactly one of"),
        ({}, "exactly one of"),
        ({"policy_file": "/nonexistent/guard.rego"}, "cannot be read"),
        ({"policy": "package capsem\ndecision := \"BLOCK\"", "hooks": []}, "at least one hook"),
    ],
)
def test_bad_rego_stops_at_load_with_a_readable_message(options, message):
    with pytest.raises(ConfigError) as error:
        load_policies([PolicySettings(class_path="rego", options=options)], source="proxy.yaml")
    assert message in str(error.value)
    assert "proxy.yaml: policies[0].options" in str(error.value)


CONFLICT = """
package capsem
import rego.v1
decision := {"verdict": "BLOCK"} if contains(input.prompt, "a")
decision := {"verdict": "LOG"} if contains(input.prompt, "b")
"""


async def test_an_evaluation_error_raises():
    policy = RegoPolicy.from_config({"policy": CONFLICT})
    assert (await policy.on_model_call(_model_call("a"))).verdict is Verdict.BLOCK
    with pytest.raises(RegoEvaluationError, match="conflicting"):
        await policy.on_model_call(_model_call("ab"))


@pytest.mark.parametrize(("fail_open", "verdict"), [(False, Verdict.BLOCK), (True, Verdict.LOG)])
async def test_an_evaluation_error_fails_closed_unless_configured_open(fail_open, verdict):
    settings = PolicySettings(class_path="rego", options={"policy": CONFLICT}, fail_open=fail_open)
    outcome = await Pipeline(load_policies([settings])).check_request(_context("ab"))
    assert outcome.governing.verdict is verdict
    assert outcome.governing.reason == "policy_error"


def test_concurrent_evaluations_each_see_their_own_input():
    source = """
package capsem
decision := {"verdict": "LOG", "reason": input.prompt}
"""
    policy = RegoPolicy.from_config({"policy": source})

    def run(worker):
        seen = []
        for index in range(150):
            prompt = f"worker {worker} call {index}"
            seen.append(policy.decide("on_model_call", _model_call(prompt)).details == prompt)
        return all(seen)

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(run, range(4)))


SLOW = """
package capsem
import rego.v1

decision := "BLOCK" if {
    input.hook == "on_model_call"
    regex.match("^(a|aa)*$", input.prompt)
}
"""


async def test_a_runaway_rule_fails_closed_at_its_budget_while_the_event_loop_runs_on():
    import asyncio

    from capsem_proxy.policies.base import ConfiguredPolicy

    policy = RegoPolicy.from_config({"policy": SLOW})
    # rego-cpp's regular expressions backtrack: about 0.2 s for 32 characters, doubling every two more.
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    counting = asyncio.create_task(ticker())
    try:
        outcome = await Pipeline([ConfiguredPolicy(policy, "rego", False, 0.05)]).check_request(
            _context("a" * 32 + "b")
        )
    finally:
        counting.cancel()
    assert outcome.blocked and "exceeded its time budget of 50 ms" in outcome.governing.details
    # The event loop kept running while the rule was evaluated: the budget could end the check (an
    # evaluation blocking the loop would have ended with the rule's own verdict), and the ticker's
    # 1 ms timer, due before the 50 ms budget's, ran meanwhile however busy the machine is.
    assert ticks >= 1
    short = await Pipeline([ConfiguredPolicy(policy, "rego", False, 2.0)]).check_request(_context("aaaa"))
    assert short.blocked and short.governing.policy == "rego" and short.governing.reason == "policy_violation"
