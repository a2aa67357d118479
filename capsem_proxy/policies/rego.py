"""A built-in policy written in Rego (Open Policy Agent's language), evaluated in-process by
rego-cpp (`regopy`).

The policy is compiled once, at load: a syntax error stops start-up with rego-cpp's message.
Each hook call hands the rule an input document describing the event (see `event_input`) and
reads back the value of `query` (default `data.capsem.decision`):

- undefined or null: no opinion (ALLOW);
- a verdict string: `"BLOCK"`;
- an object: `{"verdict": "BLOCK", "reason": "shown to the caller", "code": "policy_violation"}`;
- an array (a partial set rule, `decisions contains {...}`): the strictest entry wins.

In the proxy config (`policy` holds inline source instead of `policy_file`; `data` is readable as
`data.<key>`; `hooks` defaults to all four)::

    policies:
      - class: rego
        options: {policy_file: /etc/capsem/guard.rego, query: data.capsem.decision,
                  hooks: [on_model_call, on_tool_call], data: {forbidden: [drop table]}}

Verdicts are ALLOW, LOG, BLOCK, CONFIRM, CLARIFY and REPLAN. An evaluation error (conflicting
values of a complete rule, a missing built-in) raises, so the pipeline blocks unless the policy
is configured to fail open.

Evaluation runs on worker threads, never on the event loop: a Rego rule can take any time (a
`regex.match` with a backtracking pattern is exponential in its input: rego-cpp's regular
expressions are std::regex; `numbers.range(1, 3e6)` takes seconds), and rego-cpp releases the
GIL while it evaluates (regopy calls it through ctypes), so other requests go on meanwhile. Each
worker keeps its own interpreter (one holds its input between `set_input` and the query); the
policy's `timeout_ms` bounds the wait and fails the hook closed. An evaluation cannot be
interrupted: one past its budget keeps its worker until it ends, and when every worker is so
held, evaluations wait and time out, failing closed, until one comes back. The hop costs about
0.05 ms on top of the evaluation itself (0.1 ms for a 2 KB prompt).

Not bounded, and documented as such: rego-cpp's std::regex recurses once per character of its
input, so a regex built-in over a long input (about 10,000 characters and up) overflows the
thread's stack and ends the process. Guard such rules with a length check (`count(input.prompt)
< 4096`).
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

import orjson

# rego-cpp's library, once loaded, breaks RE2's binding if that loads after it (the next RE2
# compile aborts the process with "free(): invalid size"): RE2 (capsem_proxy.linear_regex) is
# loaded first, whatever order the configured policies import in.
import re2  # noqa: F401
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from regopy import Input, Interpreter, RegoError

# The high-level `Interpreter.query_bundle` json-decodes the output before it can be inspected and
# fails on rego-cpp's error outputs; these calls read the output (and its error text) first.
from regopy.rego_shared import rego_bundle_query, rego_free_output, rego_output_ok, rego_output_string

from capsem_proxy.decisions import SEVERITY, Decision, Verdict
from capsem_proxy.hooks import HOOK_NAMES, HookName, ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse

__all__ = ["RegoEvaluationError", "RegoOptions", "RegoPolicy", "event_input"]


_VERDICTS = {verdict.value: verdict for verdict in Verdict if verdict is not Verdict.REDACT}
_QUERY = re.compile(r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_PACKAGE = re.compile(r"^[ \t]*package[ \t]+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
# One error of rego-cpp's error sequence: `(error 6:p.rego|50|1 (errormsg 16:this is unclosed) ...)`,
# where `6:` and `16:` are the lengths of what follows and 50 is the byte offset in the module.
_ERROR = re.compile(r"\(error(?: \d+:[^|\n]*\|(?P<offset>\d+)\|\d+)?\s*\(errormsg (?P<length>\d+):")
_DEFAULT_CODE = "policy_violation"


class RegoEvaluationError(RuntimeError):
    """The Rego query could not be evaluated, or returned a value that is not a decision."""


class RegoOptions(BaseModel):
    """Options of RegoPolicy."""

    model_config = ConfigDict(extra="forbid")

    policy: str | None = Field(None, description="the Rego module's source, inline")
    policy_file: str | None = Field(None, description="path of a .rego file (instead of `policy`)")
    query: str = Field("data.capsem.decision", description="the rule whose value is the decision")
    hooks: list[HookName] = Field(default_factory=lambda: list(HOOK_NAMES), description="hooks the rule sees")
    data: dict[str, Any] = Field(default_factory=dict, description="base documents, readable as data.<key>")

    @model_validator(mode="after")
    def _one_source(self) -> RegoOptions:
        if (self.policy is None) == (self.policy_file is None):
            raise ValueError("give exactly one of 'policy' (inline Rego) or 'policy_file'")
        return self

    @field_validator("query")
    @classmethod
    def _query_is_a_reference(cls, query: str) -> str:
        if not _QUERY.match(query):
            raise ValueError(f"query '{query}' must be a reference like data.<package>.<rule>")
        return query

    @field_validator("hooks")
    @classmethod
    def _some_hooks(cls, hooks: list[str]) -> list[str]:
        if not hooks:
            raise ValueError("at least one hook is required")
        return hooks


def _readable_error(message: str, source: str, module_name: str) -> str:
    """rego-cpp's error sequence (an S-expression with byte offsets) as `file:line:col: message`."""
    readable = []
    encoded = source.encode("utf-8")
    for match in _ERROR.finditer(message):
        text = message[match.end() : match.end() + int(match.group("length"))]
        place = module_name
        if match.group("offset") is not None:
            before = encoded[: int(match.group("offset"))].decode("utf-8", errors="replace")
            line = before.count("\n") + 1
            column = len(before) - (before.rfind("\n") + 1) + 1
            place = f"{module_name}:{line}:{column}"
        readable.append(f"{place}: {text}")
    return "; ".join(dict.fromkeys(readable)) or message.strip()


def _defines_rule(source: str, query: str) -> bool:
    """True when a module's package prefixes `query` and the next name is one of its rule heads.

    rego-cpp compiles a reference to a rule nobody defines (a typo'd query) and then finds it
    undefined on every input, which would allow everything; this catches that at load.
    """
    path = query.split(".")[1:]
    for package in _PACKAGE.findall(source):
        package_path = package.split(".")
        if path[: len(package_path)] != package_path or len(path) <= len(package_path):
            continue
        rule = re.escape(path[len(package_path)])
        if re.search(rf"^[ \t]*(?:default[ \t]+)?{rule}\b", source, re.MULTILINE):
            return True
    return False


def _tool(definition: Any) -> dict[str, Any]:
    return {"name": definition.name, "description": definition.description, "parameters": definition.parameters}


def _blank_input(hook: str) -> dict[str, Any]:
    """The input document with every key present and empty."""
    return {
        "hook": hook,
        "request_id": "",
        "tenant_id": "",
        "agent_id": "",
        "session_id": "",
        "provider": "",
        "operation": "",
        "model": "",
        "max_output_tokens": None,
        "stream": False,
        "system": "",
        "offered_tools": [],
        "prompt": "",
        "media_texts": [],
        "history_tool_calls": [],
        "other_texts": [],
        "tool": None,
        "args": {},
        "emitted": False,
        "response": {},
        "answer": "",
        "thinking": "",
        "final": True,
    }


def event_input(hook: str, event: Any) -> dict[str, Any]:
    """The input document a Rego rule sees for one hook event.

    Every key is always present, so rules need no existence checks. Request-wide keys: `hook`,
    `request_id`, `tenant_id`, `agent_id`, `session_id`, `provider`, `operation`, `model`,
    `max_output_tokens`, `stream`, `system`, `offered_tools` (names). Per hook: on
    `on_model_call`, `prompt` (the conversation: messages, documents, thinking carried in the
    history), `media_texts` (text documents sent inline, decoded), `history_tool_calls`
    ([{name, args}] of the calls the history carries) and `other_texts` (every string the
    adapter did not recognise); `tool` ({name, description, parameters}), `args` and `emitted`
    on `on_tool_call`; `tool` and `response` (the result object, text documents inside it
    decoded under `attachments`) on `on_tool_response`; `answer`, `thinking` and `final` on
    `on_model_response`.
    """
    context: RequestContext = event.context
    exchange = context.exchange
    document = _blank_input(hook)
    document.update(
        request_id=context.request_id,
        tenant_id=context.tenant_id,
        agent_id=context.agent_id,
        session_id=context.session_id,
        provider=context.provider,
        operation=context.operation,
        model=exchange.model,
        max_output_tokens=exchange.max_output_tokens,
        stream=exchange.stream,
        system=exchange.system,
        offered_tools=[tool.name for tool in exchange.tools],
    )
    if isinstance(event, ModelCall):
        document["model"] = event.model_name
        document["system"] = event.system_instructions
        document["prompt"] = event.prompt
        document["media_texts"] = event.media_texts
        document["history_tool_calls"] = [
            {"name": call.name, "args": call.arguments if call.wire is None or call.arguments else call.wire}
            for call in event.history_tool_calls
        ]
        document["other_texts"] = event.other_texts
    elif isinstance(event, ToolCall):
        document["tool"] = _tool(event.tool)
        document["args"] = event.args
        document["emitted"] = event.emitted
    elif isinstance(event, ToolResponse):
        document["tool"] = _tool(event.tool)
        document["response"] = event.response
    elif isinstance(event, ModelResponse):
        document["answer"] = event.answer.text
        document["thinking"] = event.answer.thinking
        document["final"] = event.final
    return document


# Worker threads per Rego policy: evaluations run at once, and held by runaway rules before
# every evaluation of the policy waits (and fails closed at its time budget).
_WORKERS = 4


class _Workers:
    """A few daemon threads running evaluations: a runaway evaluation cannot be interrupted, and
    must not keep the process from exiting either (executor threads are joined at exit)."""

    def __init__(self, count: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        for index in range(count):
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, job = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting before it started
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)

    async def run(self, job: Callable[[], Any]) -> Any:
        """`job()` on a worker; cancelling the wait drops the job if it has not started."""
        future: Future[Any] = Future()
        self._jobs.put((future, job))
        return await asyncio.wrap_future(future)


class RegoPolicy:
    """Runs a Rego rule on the configured hooks (built-in name `rego`)."""

    name: ClassVar[str] = "rego"

    def __init__(self, options: RegoOptions) -> None:
        self.options = options
        if options.policy_file is not None:
            path = Path(options.policy_file)
            try:
                source = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"policy_file '{path}' cannot be read: {exc.strerror or exc}") from exc
            module_name = path.name
        else:
            source = options.policy or ""
            module_name = "policy.rego"
        self.implemented_hooks = frozenset(options.hooks)
        self._query = options.query
        self._source, self._module_name = source, module_name
        # One interpreter per thread: an interpreter holds its input between set_input and the query.
        self._local = threading.local()
        self._compiled()
        self._workers: _Workers | None = None
        if not _defines_rule(source, options.query):
            raise ValueError(f"query '{options.query}' names no rule of {module_name} (check its package and rule)")
        # A first evaluation per hook, on an empty event, surfaces errors that do not depend on the
        # input (a default that is not a decision, say) at start-up rather than on a request.
        for hook in options.hooks:
            try:
                self._governing(hook, self.evaluate(_blank_input(hook)))
            except RegoEvaluationError as exc:
                raise ValueError(f"{module_name} on an empty {hook} event: {exc}") from exc

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> RegoPolicy:
        return cls(RegoOptions.model_validate(options))

    def _compiled(self) -> tuple[Interpreter, Any]:
        """This thread's interpreter and compiled bundle (built on first use in each thread)."""
        compiled = getattr(self._local, "compiled", None)
        if compiled is not None:
            return compiled  # type: ignore[no-any-return]
        source, module_name = self._source, self._module_name
        interpreter = Interpreter()
        try:
            if self.options.data:
                interpreter.add_data(self.options.data)
            interpreter.add_module(module_name, source)
            bundle = interpreter.build(self._query)
        except RegoError as exc:
            raise ValueError(f"Rego does not compile: {_readable_error(str(exc), source, module_name)}") from exc
        if not bundle.ok():
            raise ValueError(f"Rego does not compile ({module_name})")
        compiled = self._local.compiled = (interpreter, bundle)
        return compiled

    def evaluate(self, document: dict[str, Any]) -> Any:
        """The query's value for `document` (None when undefined), evaluated in this thread."""
        interpreter, bundle = self._compiled()
        interpreter.set_input(Input(document))
        output = rego_bundle_query(interpreter._impl, bundle._impl)
        try:
            ok = rego_output_ok(output)
            text = rego_output_string(output)
        finally:
            rego_free_output(output)
        if text.startswith("("):  # an error term, e.g. a built-in that does not exist
            raise RegoEvaluationError(f"{self._query}: {_readable_error(text, '', 'policy')}")
        if not ok:
            raise RegoEvaluationError(f"{self._query}: evaluation failed (a complete rule with conflicting values?)")
        if text == "undefined":
            return None
        results = orjson.loads(text)
        result = results[0] if isinstance(results, list) and results else results
        expressions = result.get("expressions") if isinstance(result, dict) else None
        return expressions[0] if expressions else None

    def decide(self, hook: str, event: Any) -> Decision | None:
        """The decision for one hook event; None when the rule is undefined or says ALLOW
        (evaluated in the calling thread: the hooks use `decide_off_loop`)."""
        return self._governing(hook, self.evaluate(event_input(hook, event)))

    async def decide_off_loop(self, hook: str, event: Any) -> Decision | None:
        """`decide`, evaluated on a worker thread while the event loop serves other requests."""
        document = event_input(hook, event)
        if self._workers is None:
            self._workers = _Workers(_WORKERS, "capsem-rego")
        return self._governing(hook, await self._workers.run(lambda: self.evaluate(document)))

    def _governing(self, hook: str, value: Any) -> Decision | None:
        """The strictest decision among the query's value (one decision, or an array of them)."""
        entries = value if isinstance(value, list) else [value]
        governing: Decision | None = None
        for entry in entries:
            decision = self._decision(hook, entry)
            if decision is not None and (governing is None or decision.severity > governing.severity):
                governing = decision
        return governing

    def _decision(self, hook: str, value: Any) -> Decision | None:
        if value is None:
            return None
        if isinstance(value, str):
            verdict_name, details, code = value, "", _DEFAULT_CODE
        elif isinstance(value, dict) and isinstance(value.get("verdict"), str):
            verdict_name = value["verdict"]
            details = str(value.get("reason") or value.get("msg") or "")
            code = str(value.get("code") or _DEFAULT_CODE)
        else:
            raise RegoEvaluationError(
                f"{self._query} returned {orjson.dumps(value).decode()[:200]}: expected a verdict string or "
                '{"verdict": ..., "reason": ...}'
            )
        verdict = _VERDICTS.get(verdict_name.upper())
        if verdict is None:
            raise RegoEvaluationError(f"{self._query} returned an unknown verdict '{verdict_name}'")
        if SEVERITY[verdict] == SEVERITY[Verdict.ALLOW]:
            return None
        return Decision(verdict, self.name, hook, reason=code, details=details or f"Rego rule {self._query}")

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        return await self.decide_off_loop("on_model_call", event)

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        return await self.decide_off_loop("on_tool_call", event)

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        return await self.decide_off_loop("on_tool_response", event)

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        return await self.decide_off_loop("on_model_response", event)
