"""Runs a real `capsem.policies.Policy` unchanged: converts hook events into CAPSEM's
arguments (Agent, Tool, Media …) and CAPSEM's Decision into the proxy's.

Only the hooks a CAPSEM policy overrides are reported as implemented, so a policy that never
looks at answers costs nothing on the response path.

CAPSEM's `on_model_call` has one `prompt` for everything a request asks the model to read, so
it gets every request text that has no hook of its own: the conversation (documents, search
results, thinking and refusals carried in the history), text documents sent inline (decoded),
the tool calls in the history (name, then the arguments as a JSON text) and every string the adapter did not
recognise. Tool definitions stay on `on_tool_call` and tool results on `on_tool_response`
(with text documents inside a result decoded under `attachments`). A CAPSEM policy therefore
reads the same request a text detector does, and cannot be walked around by moving text into a
field it was not shown.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import orjson
from capsem.models import Agent, Media
from capsem.models import Decision as CapsemDecision
from capsem.models import Verdict as CapsemVerdict
from capsem.policies import Policy as CapsemPolicy
from capsem.tools import Schema, Tool
from pydantic import ValidationError

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import MediaPart, ToolDefinition
from capsem_proxy.hooks import HOOK_NAMES, ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse
from capsem_proxy.policies.base import never_suspends

__all__ = ["CapsemPolicyAdapter", "is_capsem_policy"]

_AGENT_SCRATCH_KEY = "capsem_agent"
_PROMPT_SCRATCH_KEY = "capsem_prompt"
_TOOL_CACHE_LIMIT = 2048
_DEFAULT_AGENT_NAME = "capsem-proxy"


def is_capsem_policy(obj: Any) -> bool:
    """True for instances of `capsem.policies.Policy` subclasses."""
    return isinstance(obj, CapsemPolicy)


class _ToolConverter:
    """Builds CAPSEM Tool objects, cached: the same tool definitions come with every request."""

    def __init__(self) -> None:
        self._cache: OrderedDict[bytes, Tool] = OrderedDict()

    def convert(self, tool: ToolDefinition) -> Tool:
        key = orjson.dumps((tool.name, tool.description, tool.parameters), option=orjson.OPT_SORT_KEYS)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            parameters = Schema.model_validate(tool.parameters or {})
        except ValidationError:
            # JSON Schema features CAPSEM's subset cannot express (type lists, say): the name and
            # description still reach the policy.
            parameters = Schema()
        converted = Tool(
            name=tool.name or "unnamed",
            # CAPSEM requires a non-empty description; the name is the best stand-in.
            description=tool.description or tool.name or "unnamed",
            parameters=parameters,
        )
        self._cache[key] = converted
        if len(self._cache) > _TOOL_CACHE_LIMIT:
            self._cache.popitem(last=False)
        return converted


_TOOLS = _ToolConverter()

_CAPSEM_ALLOW = CapsemVerdict.ALLOW  # read once: a member read through its Enum class is a lookup each time
_VERDICTS = {
    "ALLOW": Verdict.ALLOW,
    "LOG": Verdict.LOG,
    "BLOCK": Verdict.BLOCK,
    "CONFIRM": Verdict.CONFIRM,
    "CLARIFY": Verdict.CLARIFY,
    "REPLAN": Verdict.REPLAN,
}


def _media(parts: list[MediaPart]) -> list[Media]:
    if not parts:
        return []
    converted = []
    for part in parts:
        content = part.data if part.data is not None else (part.uri or "").encode()
        converted.append(Media.model_construct(content=content, mime_type=part.mime_type))
    return converted


def _finished(coroutine: Any) -> Any:
    """The result of a coroutine whose code never awaits: it ends in its first step."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise RuntimeError("a CAPSEM hook found never to await suspended")


_AGENTS: OrderedDict[tuple[Any, ...], Agent] = OrderedDict()
_AGENT_CACHE_LIMIT = 1024


def _agent(context: RequestContext) -> Agent:
    """The CAPSEM Agent of a request: its agent id, system instructions and offered tools.

    Agents repeat from request to request (same app, same instructions, same tools), so they
    are cached; CAPSEM policies are stateless by contract and must not modify them.
    """
    scratch = context.scratch
    agent = scratch.get(_AGENT_SCRATCH_KEY)
    if agent is None:
        exchange = context.exchange
        if exchange.tools:
            tools = [_TOOLS.convert(tool) for tool in exchange.tools]
            key: tuple[Any, ...] = (context.agent_id, exchange.system, *map(id, tools))
        else:  # the usual request offers none: the key is built without unpacking an empty map
            tools = []
            key = (context.agent_id, exchange.system)
        agent = _AGENTS.get(key)
        if agent is None:
            agent = Agent.model_construct(
                name=context.agent_id or _DEFAULT_AGENT_NAME, instructions=exchange.system, tools=tools, sub_agents=[]
            )
            _AGENTS[key] = agent
            if len(_AGENTS) > _AGENT_CACHE_LIMIT:
                _AGENTS.popitem(last=False)
        scratch[_AGENT_SCRATCH_KEY] = agent
    return agent


def _prompt(event: ModelCall) -> str:
    """Everything a CAPSEM policy's `prompt` stands for (see the module docstring), built once
    per request and shared by every CAPSEM policy."""
    exchange = event.context.exchange
    if not exchange.unrecognised:
        for message in exchange.messages:
            if message.media or message.tool_calls:
                break
        else:
            return event.prompt  # the usual request: the conversation is all there is
    scratch = event.context.scratch
    prompt = scratch.get(_PROMPT_SCRATCH_KEY)
    if prompt is None:
        texts = [event.prompt] if event.prompt else []
        texts.extend(event.media_texts)
        for call in event.history_tool_calls:
            # The arguments as one JSON text, as the model wrote them.
            texts.extend(text for text in (call.name, call.raw_arguments) if text)
        texts.extend(event.other_texts)
        prompt = scratch[_PROMPT_SCRATCH_KEY] = texts[0] if len(texts) == 1 else "\n".join(texts)
    return prompt


@functools.cache
def _always_allowing_hooks() -> frozenset[Any]:
    """Hook functions known to allow whatever they are given: those of CAPSEM's base `Policy`, and
    the answer and tool-result hooks of its `DebugPolicy`. A policy whose hook is one of these very
    function objects (inherited, not merely of the same name) has no opinion there, so an answer
    is not decoded, let alone held back, for it."""
    from capsem.policies.debug_policy import DebugPolicy

    hooks: set[Any] = {getattr(CapsemPolicy, hook) for hook in HOOK_NAMES}
    hooks.update((DebugPolicy.on_model_response, DebugPolicy.on_tool_response))
    return frozenset(hooks)


class CapsemPolicyAdapter:
    """Presents a CAPSEM policy through the proxy's hook interface."""

    def __init__(self, policy: CapsemPolicy, name: str | None = None) -> None:
        self.capsem_policy = policy
        self.name = name or getattr(policy, "name", None) or type(policy).__name__
        always_allow = _always_allowing_hooks()
        self.implemented_hooks = frozenset(
            hook for hook in HOOK_NAMES if getattr(type(policy), hook, None) not in always_allow
        )
        # Hooks whose CAPSEM implementation never awaits run inline (see Pipeline._run).
        self.inline_hooks = frozenset(
            hook for hook in self.implemented_hooks if never_suspends(getattr(policy, hook))
        )
        # The request's hook as a plain function (the pipeline's `sync_hooks`): a CAPSEM hook that never
        # awaits finishes in its first step, so no coroutine of the adapter's own is wrapped around it.
        self.sync_hooks = {"on_model_call": self._model_call_now} if "on_model_call" in self.inline_hooks else {}
        # What a policy may declare about the answers it reads (see the stream guard).
        self.window_chars = int(getattr(policy, "window_chars", 0) or 0)
        self.needs_whole_answer = bool(getattr(policy, "needs_whole_answer", False))

    def _decision(self, result: Any, hook: str, subject: str = "") -> Decision | None:
        if result is None:
            return None
        if not isinstance(result, CapsemDecision):
            raise TypeError(f"policy {self.name} returned {type(result).__name__}, not a capsem Decision")
        if result.verdict is _CAPSEM_ALLOW:  # the usual answer, without an enum lookup
            return None
        verdict = _VERDICTS.get(result.verdict.value, Verdict.BLOCK)
        if verdict is Verdict.ALLOW:
            return None
        reason = result.reason.value if hasattr(result.reason, "value") else str(result.reason)
        return Decision(
            verdict=verdict, policy=self.name, hook=hook, reason=reason, details=result.details, subject=subject
        )

    def _model_call(self, event: ModelCall) -> Any:
        """The CAPSEM hook's coroutine for `event`."""
        return self.capsem_policy.on_model_call(
            invocation_id=event.context.request_id,
            agent=_agent(event.context),
            model_name=event.model_name,
            system_instructions=event.system_instructions,
            prompt=_prompt(event),
            media=_media(event.media),
        )

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        return self._decision(await self._model_call(event), "on_model_call")

    def _model_call_now(self, event: ModelCall) -> Decision | None:
        """`on_model_call` for a CAPSEM hook that never awaits, run to its end here."""
        return self._decision(_finished(self._model_call(event)), "on_model_call")

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        result = await self.capsem_policy.on_tool_call(
            invocation_id=event.context.request_id,
            agent=_agent(event.context),
            tool=_TOOLS.convert(event.tool),
            args=event.args,
        )
        return self._decision(result, "on_tool_call", event.tool.name)

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        result = await self.capsem_policy.on_tool_response(
            invocation_id=event.context.request_id,
            agent=_agent(event.context),
            tool=_TOOLS.convert(event.tool),
            response=event.response,
        )
        return self._decision(result, "on_tool_response", event.tool.name)

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        answer = event.answer
        result = await self.capsem_policy.on_model_response(
            invocation_id=event.context.request_id,
            agent=_agent(event.context),
            response=answer.text,
            thoughts=answer.thinking,
            media=_media(answer.media),
        )
        return self._decision(result, "on_model_response")


