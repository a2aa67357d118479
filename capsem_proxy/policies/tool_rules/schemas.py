"""The JSON schemas requests give their tools, compiled once and kept in a bounded cache, and their
violations described in words. Gemini's upper-case OpenAPI types are read as JSON Schema; a schema
that is not valid validates nothing."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import orjson
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from capsem_proxy.policies.tool_rules.reasons import shortened

__all__ = ["SchemaCache", "schema_problem"]

_INVALID_SCHEMA = object()


def _as_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schemas as JSON Schema: `STRING` -> `string`, `nullable` -> a null type."""
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {
        # Property names are names, not schemas: only their values are converted.
        key: {name: _as_json_schema(item) for name, item in value.items()}
        if key == "properties" and isinstance(value, dict)
        else _as_json_schema(value)
        for key, value in schema.items()
    }
    kind = converted.get("type")
    if isinstance(kind, str):
        converted["type"] = kind = kind.lower()
        if converted.pop("nullable", False) is True:
            converted["type"] = [kind, "null"]
    elif isinstance(kind, list):
        converted["type"] = [item.lower() if isinstance(item, str) else item for item in kind]
    return converted


class SchemaCache:
    """Compiled validators by schema (its canonical JSON), least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._validators: OrderedDict[bytes, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._validators)

    def validator(self, schema: dict[str, Any]) -> Validator | None:
        """The validator of `schema`; None when the schema is not a valid JSON schema."""
        try:
            key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            key = repr(schema).encode()
        found = self._validators.get(key)
        if found is not None:
            self._validators.move_to_end(key)
            return None if found is _INVALID_SCHEMA else found
        json_schema = _as_json_schema(schema)
        cls = validator_for(json_schema, default=Draft202012Validator)
        try:
            cls.check_schema(json_schema)
            compiled: Any = cls(json_schema)
        except SchemaError:
            compiled = _INVALID_SCHEMA
        self._validators[key] = compiled
        if len(self._validators) > self._size:
            self._validators.popitem(last=False)
        return None if compiled is _INVALID_SCHEMA else compiled


def _joined(pointer: str, name: Any) -> str:
    return f"{pointer}/{shortened(name)}".lstrip("/")


def _described(error: ValidationError) -> str:
    """The schema violation in words, naming arguments but never their values."""
    where = "/" + "/".join(shortened(part) for part in error.absolute_path) if error.absolute_path else ""
    keyword = error.validator
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        required = error.validator_value
        missing = [name for name in required if name not in instance] if isinstance(required, list) else []
        return f"missing required argument '{_joined(where, missing[0] if missing else '?')}'"
    if keyword == "additionalProperties" and isinstance(instance, dict) and isinstance(error.schema, dict):
        known = error.schema.get("properties") or {}
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        extra = [
            name for name in instance if name not in known and not any(re.search(p, name) for p in patterns)
        ]
        return f"unexpected argument '{_joined(where, extra[0] if extra else '?')}'"
    target = f"argument '{where.lstrip('/')}'" if where else "the arguments"
    if keyword == "type":
        return f"{target} should be of type {error.validator_value}"
    return f"{target} fails the schema's '{keyword}' rule"


def schema_problem(validator: Validator, args: Any) -> str:
    """What is wrong with `args` under `validator`, in words ("" when they match)."""
    try:
        error = best_match(validator.iter_errors(args))
    except Unresolvable:
        return ""  # a `$ref` to a document elsewhere: nothing is fetched, so no verdict
    return "" if error is None else _described(error)
