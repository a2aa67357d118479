"""The pipeline's methods for tools reached directly (MCP): a list of offered tools, one invocation,
one result, each through the usual hooks, so every policy applies unchanged."""

from __future__ import annotations

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange, ToolDefinition, ToolResult
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.base import ConfiguredPolicy
from capsem_proxy.policies.tool_rules import ToolRulesPolicy

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def _context(tools: list[ToolDefinition]) -> RequestContext:
    return RequestContext("req", "", "mcp:files", "tools/call", Exchange("mcp:files", "tools/call", tools=tools))


class Refuses:
    """Blocks tools whose name starts with `bad`, and results mentioning `poison`; records the events."""

    name = "refuses"

    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool]] = []

    async def on_tool_call(self, event):
        self.events.append(("call", event.tool.name, event.emitted))
        if event.tool.name.startswith("bad"):
            return Decision(Verdict.BLOCK, self.name, "on_tool_call", details="bad tool")
        return None

    async def on_tool_response(self, event):
        self.events.append(("result", event.tool.name, bool(event.result and event.result.texts())))
        if "poison" in " ".join(event.result.texts()):
            return Decision(Verdict.BLOCK, self.name, "on_tool_response", details="poisoned")
        return None


def _pipeline(*policies) -> Pipeline:
    return Pipeline([ConfiguredPolicy(policy, policy.name) for policy in policies])


async def test_offered_tools_get_one_outcome_each_in_order():
    refuses = Refuses()
    tools = [ToolDefinition("good"), ToolDefinition("bad_one"), ToolDefinition("fine")]
    outcomes = await _pipeline(refuses).check_offered_tools(_context(tools), tools)
    assert [outcome.blocked for outcome in outcomes] == [False, True, False]
    assert refuses.events == [("call", "good", False), ("call", "bad_one", False), ("call", "fine", False)]
    assert await Pipeline([]).check_offered_tools(_context(tools), tools) != []


async def test_an_invocation_is_checked_as_an_emitted_call_against_the_listed_schema():
    rules = ToolRulesPolicy.from_config({})
    tool = ToolDefinition("add", parameters=SCHEMA)
    pipeline = _pipeline(rules)
    wrong = await pipeline.check_tool_invocation(_context([tool]), tool, {"a": "one"}, "1")
    right = await pipeline.check_tool_invocation(_context([tool]), tool, {"a": 1}, "2")
    unlisted = await pipeline.check_tool_invocation(_context([tool]), ToolDefinition("other"), {}, "3")
    assert wrong.blocked and "do not match its schema" in wrong.governing.details
    assert wrong.governing.extra["emitted"] is True
    assert not right.blocked
    assert unlisted.blocked and "was not offered" in unlisted.governing.details


async def test_a_result_goes_through_on_tool_response():
    refuses = Refuses()
    pipeline = _pipeline(refuses)
    assert pipeline.reads_tool_results() and not Pipeline([]).reads_tool_results()
    tool = ToolDefinition("read")
    clean = await pipeline.check_tool_result(_context([tool]), tool, ToolResult("1", "read", {"content": "fine"}))
    poisoned = await pipeline.check_tool_result(
        _context([tool]), tool, ToolResult("2", "read", {"content": "poison here"})
    )
    assert not clean.blocked and poisoned.blocked
    assert refuses.events == [("result", "read", True), ("result", "read", True)]
