"""The guard of one stream, built only when an event needs it.

With no policy reading the answer's text, a guard only ever holds the tool calls the model
emits: until the first event that may hold one, every event goes out unread and all the guard
would do is keep token counts. Most streams carry no call, so the guard (and what configures it)
is built at that first event, if ever; the counts read before are handed to it then. A guard
built later is in the state one built at the start would be in: nothing held, no text read.
"""

from __future__ import annotations

from collections.abc import Callable

from capsem_proxy.streaming.events import UsageDelta
from capsem_proxy.streaming.guard import StreamGuard

__all__ = ["LazyGuard"]


class LazyGuard:
    """A StreamGuard built on first use (`get`); until then, the token counts of the events sent unread."""

    __slots__ = ("_build", "_max_buffer_bytes", "guard", "input_tokens", "output_tokens")

    def __init__(self, build: Callable[[], StreamGuard] | StreamGuard, max_buffer_bytes: int = 0) -> None:
        if isinstance(build, StreamGuard):
            self.guard: StreamGuard | None = build
            self._build: Callable[[], StreamGuard] | None = None
        else:
            self.guard = None
            self._build = build
        # An event larger than the guard's buffer goes to the guard (which refuses it) rather than out.
        self._max_buffer_bytes = max_buffer_bytes
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def get(self) -> StreamGuard:
        """The guard, built now if it was not yet, with the counts read so far."""
        guard = self.guard
        if guard is None:
            assert self._build is not None
            guard = self.guard = self._build()
            guard.add_usage(UsageDelta(self.input_tokens, self.output_tokens))
        return guard

    def pass_unread(self, raw: bytes) -> bool:
        """`StreamGuard.pass_unread`; with no guard yet, nothing is held: True within the buffer cap."""
        guard = self.guard
        if guard is None:
            return len(raw) <= self._max_buffer_bytes
        return guard.pass_unread(raw)

    def add_usage(self, delta: UsageDelta | None) -> None:
        """`StreamGuard.add_usage`, kept here while there is no guard."""
        if delta is None:
            return
        guard = self.guard
        if guard is not None:
            guard.add_usage(delta)
            return
        if delta.input_tokens is not None:
            self.input_tokens = delta.input_tokens
        if delta.output_tokens is not None:
            self.output_tokens = delta.output_tokens

    @property
    def text_released(self) -> bool:
        guard = self.guard
        return guard is not None and guard.text_released
