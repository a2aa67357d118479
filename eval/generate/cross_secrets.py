"""Builds eval/cross/secrets.jsonl: credentials in formats defined by another project's rule set
(split `cross`), never by the rules the secrets detector was written against.

The formats come from the Betterleaks rules (the Gitleaks rule set's successor, MIT) as shipped in
kingfisher-secret-scanner 1.5.0 (Apache-2.0): for each rule mapped to a kind the detector reports,
values are sampled at random from the rule's own regular expression (its secret group), and kept only
when Kingfisher's scanner, with that rule set and its filters (entropy, placeholders), reports them
under that rule. Generic `<SERVICE>_API_KEY=` assignments take their values from rules of services
the detector has no rule for. Look-alikes: the same rules' prefixes with placeholder bodies, and
hashes, UUIDs and ids from mimesis 22.2.0 (MIT) assigned to names that are not secrets.

The kingfisher wheel (native code) is unpacked into the package cache and imported from there; the
rules are read through its public `Rules` API. Run `python -m eval.generate.cross_secrets`; the
output is deterministic (fixed seed).
"""

from __future__ import annotations

import importlib
import random
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.generate.common import number_cross_items, write_labelled_corpus
from eval.generate.cross_pii import _mimesis
from eval.generate.injection import CACHE, _wheel_path

KINGFISHER = ("kingfisher_secret_scanner", "1.5.0")
OUTPUT = Path(__file__).resolve().parents[1] / "cross" / "secrets.jsonl"
DETECTOR = "secrets"
SEED = 20250303
PER_RULE = 3

# Betterleaks rule -> the kind the secrets detector must report.
RULE_KINDS = {
    "openai-api-key": "openai_api_key", "anthropic-api-key": "anthropic_api_key",
    "anthropic-admin-api-key": "anthropic_api_key", "gcp-api-key": "google_api_key",
    "aws-access-token": "aws_access_key", "github-pat": "github_token", "github-oauth": "github_token",
    "github-app-token": "github_token", "github-fine-grained-pat": "github_token", "gitlab-pat": "gitlab_token",
    "slack-bot-token": "slack_token", "slack-user-token": "slack_token", "slack-app-token": "slack_token",
    "slack-webhook-url": "slack_webhook", "stripe-access-token": "stripe_key", "npm-access-token": "npm_token",
    "pypi-upload-token": "pypi_token", "twilio-api-key": "twilio_api_key", "sendgrid-api-token": "sendgrid_api_key",
    "huggingface-access-token": "huggingface_token", "telegram-bot-api-token": "telegram_bot_token",
    "digitalocean-pat": "digitalocean_token", "digitalocean-access-token": "digitalocean_token",
    "shopify-access-token": "shopify_token", "groq-api-key": "groq_api_key",
    "openrouter-api-key": "openrouter_api_key", "linear-api-key": "linear_api_key",
    "vault-service-token": "vault_token", "vault-batch-token": "vault_token",
    "azure-ad-client-secret": "azure_client_secret", "hashicorp-tf-api-token": "terraform_token",
}
# Rules of services without a rule of their own in the detector: their values, assigned to a
# `<SERVICE>_API_KEY`-like name, are generic secrets.
GENERIC_RULES = {
    "datadog-api-key": "DATADOG_API_KEY", "mailgun-private-api-token": "MAILGUN_API_KEY",
    "heroku-api-key-v2": "HEROKU_API_KEY", "datadog-application-key": "DD_APP_KEY",
}
_CARRIERS = (
    "export {name}={value}",
    "{{\"{name_lower}\": \"{value}\"}}",
    "I keep getting 401s with this key: {value} — what am I doing wrong?",
    "config:\n  {name_lower}: {value}\n  region: eu-west-1",
    "curl -H 'Authorization: Bearer {value}' https://api.example.net/v1/me",
    "{name}=\"{value}\"",
)


# ----------------------------------------------------------------------------- regex sampling

_CATEGORIES = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_WORD": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "CATEGORY_SPACE": " ",
}


def _class_chars(items: list[tuple[Any, Any]], ignore_case: bool) -> str:
    chars: list[str] = []
    negate = False
    for op, value in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars.append(chr(value))
        elif name == "RANGE":
            chars.extend(chr(code) for code in range(value[0], value[1] + 1))
        elif name == "CATEGORY":
            chars.extend(_CATEGORIES.get(str(value), ""))
    if ignore_case:
        chars.extend([c.swapcase() for c in chars if c.isalpha()])
    if negate:
        chars = [c for c in _CATEGORIES["CATEGORY_WORD"] if c not in chars]
    return "".join(sorted(set(chars)))


def _sample(tree: Any, rng: random.Random, ignore_case: bool) -> str:
    out = []
    for op, value in tree:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(value))
        elif name == "IN":
            out.append(rng.choice(_class_chars(value, ignore_case)))
        elif name == "ANY":
            out.append(rng.choice(_CATEGORIES["CATEGORY_WORD"]))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = value
            count = rng.randint(low, min(high, low + 24))
            out.extend(_sample(sub, rng, ignore_case) for _ in range(count))
        elif name == "SUBPATTERN":
            group_flags = value[1]
            out.append(_sample(value[3], rng, ignore_case or bool(group_flags & re.IGNORECASE)))
        elif name == "BRANCH":
            out.append(_sample(rng.choice(value[1]), rng, ignore_case))
        elif name == "CATEGORY":
            out.append(rng.choice(_CATEGORIES.get(str(value), "x")))
        # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF: nothing to emit
    return "".join(out)


def _secret_group(pattern: str) -> tuple[Any, bool]:
    """The parse tree of the rule's first capture group (the secret), or of the whole pattern."""
    parser = importlib.import_module("re._parser")
    # Go allows a global `(?i)` mid-pattern (Python does not): it applies to the whole sample here.
    ignore_case = "(?i)" in pattern
    parsed = parser.parse(pattern.replace("(?i)", "").replace("\\z", "$"))

    def find(tree: Any) -> Any:
        for op, value in tree:
            if str(op) == "SUBPATTERN" and value[0] == 1:
                return value[3], bool(value[1] & re.IGNORECASE)
            if str(op) == "SUBPATTERN":
                found = find(value[3])
                if found is not None:
                    return found
        return None

    found = find(parsed)
    if found is None:
        return parsed, ignore_case
    return found[0], ignore_case or found[1]


# ----------------------------------------------------------------------------- kingfisher


def _kingfisher() -> Any:
    target = CACHE / "unpacked" / f"kingfisher-{KINGFISHER[1]}"
    if not (target / "kingfisher_sdk").exists():
        with zipfile.ZipFile(_wheel_path(*KINGFISHER)) as archive:
            archive.extractall(target)
    sys.path.insert(0, str(target))
    return importlib.import_module("kingfisher_sdk._native")


def _reported(scanner: Any, value: str, rule: str) -> bool:
    """True when Kingfisher reports `value` as a secret in a line naming the rule's service (its
    rules for some services want the service named nearby)."""
    service = rule.split(".", 1)[1].split("-")[0]
    for text in (f"token = {value}\n", f"{service}_secret = {value}\n"):
        if any(value in finding.secret or finding.secret in value for finding in scanner.scan_bytes(text.encode())
               if len(finding.secret) >= 8):
            return True
    return False


def _values(native: Any, rules: Any, scanner: Any, rule: str, rng: random.Random, count: int) -> list[str]:
    tree, ignore_case = _secret_group(rules.detail(rule)["pattern"])
    values: list[str] = []
    for _ in range(400):
        value = _sample(tree, rng, ignore_case)
        if rule.endswith("stripe-access-token") and "_live_" not in value:
            continue
        if value not in values and _reported(scanner, value, rule):
            values.append(value)
            if len(values) == count:
                break
    return values


def _item(rng: random.Random, text: str, kinds: list[str], source: str, category: str | None = None) -> dict:
    label = bool(kinds)
    category = category or ("positive" if label else "benign")
    roll = rng.random()
    if roll < 0.25:
        return {"hook": "on_tool_response", "label": label, "kinds": kinds, "category": category, "source": source,
                "tool": {"name": "read_file", "description": "Read a file", "parameters": {}},
                "response": {"content": text}}
    if roll < 0.4:
        return {"hook": "on_model_response", "label": label, "kinds": kinds, "category": category, "source": source,
                "text": text}
    return {"hook": "on_model_call", "label": label, "kinds": kinds, "category": category, "source": source,
            "text": text}


def _carry(rng: random.Random, value: str, name: str) -> str:
    return rng.choice(_CARRIERS).format(name=name, name_lower=name.lower(), value=value)


def items(rng: random.Random) -> Iterator[dict]:
    native = _kingfisher()
    rules = native.Rules([], True, "low")
    scanner = native.Scanner(rules, False, False, False, None)
    version = f"kingfisher_secret_scanner=={KINGFISHER[1]}"
    for rule, kind in sorted(RULE_KINDS.items()):
        rule_id = f"betterleaks.{rule}"
        for value in _values(native, rules, scanner, rule_id, rng, PER_RULE):
            name = kind.upper().replace("_TOKEN", "_TOKEN").replace("_KEY", "_KEY")
            yield _item(rng, _carry(rng, value, name), [kind], f"{version}:rules/{rule_id} (sampled, reported)")
        prefix = re.match(r"[A-Za-z]+[-_.]", _sample(_secret_group(rules.detail(rule_id)["pattern"])[0], rng, False))
        if prefix:
            placeholder = prefix.group() + rng.choice(("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "<your-key-here>",
                                                       "YOUR_API_KEY", "..."))
            yield _item(rng, f"Set the key in your environment, e.g. {placeholder}", [],
                        f"{version}:rules/{rule_id} (prefix with a placeholder body)", category="benign_lookalike")
    for rule, name in sorted(GENERIC_RULES.items()):
        rule_id = f"betterleaks.{rule}"
        for value in _values(native, rules, scanner, rule_id, rng, PER_RULE):
            text = rng.choice(("{name}={value}", "export {name}=\"{value}\"", "{name}: {value}")).format(
                name=name, value=value)
            yield _item(rng, text, ["generic_secret"], f"{version}:rules/{rule_id} (sampled, assigned to {name})")


def lookalikes(rng: random.Random) -> Iterator[dict]:
    mimesis = _mimesis()
    seed = rng.randint(0, 1 << 30)
    crypto = mimesis.Cryptographic(seed=seed)  # type: ignore[attr-defined]
    development = mimesis.Development(seed=seed)  # type: ignore[attr-defined]
    internet = mimesis.Internet(seed=seed)  # type: ignore[attr-defined]
    text = mimesis.Text(mimesis.locales.Locale.EN, seed=seed)  # type: ignore[attr-defined]
    source = "mimesis==22.2.0:mimesis/providers/{}.py ({})"
    for _ in range(8):
        yield _item(rng, f"request_id={crypto.uuid()}", [], source.format("cryptographic", "uuid"), "benign_lookalike")
        yield _item(rng, f"sha256: {crypto.hash()}", [], source.format("cryptographic", "hash"), "benign_lookalike")
        yield _item(rng, f"commit {crypto.hash()[:40]} (tag v{development.version()})", [],
                    source.format("cryptographic", "hash"), "benign_lookalike")
        yield _item(rng, f"next_page_token = \"{crypto.token_hex(12)}\"", [],
                    source.format("cryptographic", "token_hex"), "benign_lookalike")
        yield _item(rng, f"Docs: {internet.url()}?session=reset", [], source.format("internet", "url"),
                    "benign_lookalike")
        yield _item(rng, f"API_KEY=${{API_KEY}}  # set in CI from the vault, {text.sentence()}", [],
                    source.format("text", "sentence"), "benign_lookalike")
    for _ in range(30):
        yield _item(rng, text.text(quantity=4), [], source.format("text", "text"))


def build() -> list[dict]:
    rng = random.Random(SEED)
    raw = [*items(rng), *lookalikes(rng)]
    return number_cross_items(DETECTOR, raw, lambda item: item.get("text") or str(item.get("response")))


def main() -> None:
    write_labelled_corpus(OUTPUT, build())


if __name__ == "__main__":
    main()
