"""Configuration mistakes explained in the user's terms: pydantic errors as `key: reason` lines
(without pydantic's "For further information visit …" links or its internal error types), and a
"did you mean …?" for a name that is close to a known one."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["closest", "did_you_mean", "validation_lines", "without_help_links"]

# pydantic prefixes the message of a ValueError raised in a validator; the reason alone reads better.
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")
# Only for these error types is the rejected value shown: it is a word the user picked from a list.
# Other values may be secrets (a token of the wrong type) and are never echoed.
_ECHOED_TYPES = frozenset({"literal_error", "enum"})
_MAX_ECHO_CHARS = 60
# The line pydantic appends to each error of a ValidationError's text (a link to its own docs).
_HELP_LINK = re.compile(r"^[ \t]*For further information visit https?://\S+[ \t]*\n?", re.MULTILINE)


def without_help_links(text: str) -> str:
    """`text` without pydantic's "For further information visit …" lines (for errors that reached
    a message as text, such as a policy's own ValidationError wrapped in another exception)."""
    return _HELP_LINK.sub("", text).rstrip()


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (difflib's ratio of at least 0.6), or None."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean `x`?)` when a known name is close to `name`, else ""."""
    match = closest(name, known)
    return f" (did you mean `{match}`?)" if match else ""


def _dotted(prefix: str, location: tuple[int | str, ...]) -> str:
    """A location as the config spells it: `policies[0].options.scan[1]`."""
    key = prefix
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += f".{part}" if key else str(part)
    return key or "(top level)"


def _fields_at(model: type[BaseModel] | None, location: tuple[int | str, ...]) -> list[str]:
    """The keys a model accepts at `location` (its parent's fields when the last part is the
    unknown key), so an unknown key can be matched against them; [] when not a model there."""
    current: Any = model
    for part in location:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_of(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside an annotation (`Model`, `list[Model]`, `Model | None`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def validation_lines(exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> list[str]:
    """One `key: reason` line per error of `exc`, keys spelled from `prefix` on; an unknown key
    lists the keys accepted there (or the closest one) when `model` is given."""
    lines = []
    for error in exc.errors(include_url=False):
        location = tuple(error["loc"])
        message = str(error["msg"])
        for known_prefix in _MESSAGE_PREFIXES:
            message = message.removeprefix(known_prefix)
        if error["type"] == "extra_forbidden":
            message = "unknown key"
            accepted = _fields_at(model, location[:-1]) if model is not None else []
            if accepted:
                hint = did_you_mean(str(location[-1]), accepted)
                message += hint or f" (accepted here: {', '.join(accepted)})"
        elif error["type"] in _ECHOED_TYPES and isinstance(error.get("input"), str | int | float | bool):
            message += f" (got {str(error['input'])[:_MAX_ECHO_CHARS]!r})"
        lines.append(f"{_dotted(prefix, location)}: {message}")
    return lines
