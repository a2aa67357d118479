"""Which argument values an argument rule reads: the scalars under keys matching a glob at any
depth, or under a JSON pointer whose segments may be globs (`/files/*/path`)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["ArgumentSelector"]


class ArgumentSelector:
    """An ArgumentRule's `argument` (key glob or JSON pointer), compiled."""

    def __init__(self, argument: str) -> None:
        self._pointer = (
            [
                re.compile(fnmatch.translate(segment.replace("~1", "/").replace("~0", "~")))
                for segment in argument[1:].split("/")
            ]
            if argument.startswith("/")
            else None
        )
        self._key = re.compile(fnmatch.translate(argument)) if self._pointer is None else None

    def select(self, args: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """(JSON pointer, value) of every scalar the selector picks out of `args`."""
        if self._pointer is not None:
            yield from _pointer_leaves(args, self._pointer, "")
            return
        assert self._key is not None
        seen: set[str] = set()
        for pointer, value in _keyed_values(args, self._key, ""):
            for leaf_pointer, leaf in _leaves(value, pointer):
                if leaf_pointer not in seen:
                    seen.add(leaf_pointer)
                    yield leaf_pointer, leaf


def _leaves(value: Any, pointer: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}")
    else:
        yield pointer, value


def _keyed_values(value: Any, key: re.Pattern[str], pointer: str) -> Iterator[tuple[str, Any]]:
    """Values under keys matching `key`, at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            path = f"{pointer}/{name}"
            if key.match(str(name)):
                yield path, item
            yield from _keyed_values(item, key, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keyed_values(item, key, f"{pointer}/{index}")


def _pointer_leaves(value: Any, segments: list[re.Pattern[str]], pointer: str) -> Iterator[tuple[str, Any]]:
    if not segments:
        yield from _leaves(value, pointer)
        return
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict):
        for name, item in value.items():
            if head.match(str(name)):
                yield from _pointer_leaves(item, rest, f"{pointer}/{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if head.match(str(index)):
                yield from _pointer_leaves(item, rest, f"{pointer}/{index}")
