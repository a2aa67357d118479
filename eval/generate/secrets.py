"""Builds eval/corpus/secrets.jsonl: credentials in prompts, emitted tool calls, tool results and
answers, placeholders and look-alikes that are not credentials, and ordinary texts.

Every credential is made here in its provider's real format with a random body (Python's
`random` with a fixed seed); Faker (seeded) supplies the surrounding values (hosts, user names,
passwords, sentences). Each item is one "snippet" (how a value is written: `KEY=value`, a JSON
field, a header…) placed in one "carrier" (a prompt, a tool call, a tool result or an answer).
Items go to `dev` or `test` by a hash of their (kind, snippet form, carrier) group. Run
`python -m eval.generate.secrets`; the output is deterministic.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from eval.generate.common import CORPUS_DIR, GROUP_KEY, category_summary, number_items, split_of, write_corpus

OUTPUT = CORPUS_DIR / "secrets.jsonl"
DETECTOR = "secrets"
SOURCE = "generated:secrets"
SEED = 20241105
# The seed of the provider formats added later (`_more_kinds`), kept apart so the older items do not move.
MORE_SEED = 20261206
POSITIVES_PER_KIND = 6

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
BASE64 = ALNUM + "+/"
BASE32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"


@dataclass(frozen=True, slots=True)
class Snippet:
    """How one value is written, and the finding kinds it must produce (none for negatives)."""

    text: str
    kinds: tuple[str, ...]
    form: str


class Maker:
    """Random values in the formats of real credentials and their look-alikes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker("en_US")
        self.fake.seed_instance(seed)

    def token(self, length: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def pick(self, options: list[Any]) -> Any:
        return self.rng.choice(options)

    def b64url(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def pem(self) -> str:
        label, first, lines, width = self.pick([
            ("RSA PRIVATE KEY", "MIIEow", 25, 64), ("PRIVATE KEY", "MIIEvg", 26, 64),
            ("EC PRIVATE KEY", "MHcCAQEE", 3, 64), ("OPENSSH PRIVATE KEY", "b3BlbnNzaC1rZXktdjEAAAAA", 6, 70),
        ])
        body = first + self.token(width * lines - len(first), BASE64)
        rows = [body[i : i + width] for i in range(0, len(body), width)]
        rows[-1] = rows[-1][: width - 4] + "=="
        return f"-----BEGIN {label}-----\n" + "\n".join(rows) + f"\n-----END {label}-----"

    def jwt(self) -> str:
        header = {"alg": self.pick(["HS256", "RS256", "ES256"]), "typ": "JWT"}
        payload = {
            "sub": self.fake.uuid4(), "name": self.fake.name(), "iat": self.rng.randrange(1_600_000_000, 1_750_000_000),
            "scope": self.pick(["read", "read write", "admin"]),
        }
        signature = self.token(self.pick([43, 86, 342]), URLSAFE)
        return ".".join([
            self.b64url(json.dumps(header, separators=(",", ":")).encode()),
            self.b64url(json.dumps(payload, separators=(",", ":")).encode()),
            signature,
        ])

    def moment(self) -> datetime:
        """A time in 2019-2024 (Faker's own dates depend on today's date, so they are not reproducible)."""
        return datetime(2019, 1, 1) + timedelta(seconds=self.rng.randrange(6 * 365 * 86400))

    def password(self) -> str:
        return self.fake.password(length=self.rng.randrange(10, 18), special_chars=self.rng.random() < 0.5)


# --------------------------------------------------------------------------- positive snippets


def _env(name: str, value: str, m: Maker) -> str:
    return m.pick([f"{name}={value}", f"export {name}={value}", f'{name}="{value}"', f"{name}: {value}"])


def _kinds() -> dict[str, Callable[[Maker], Snippet]]:
    def openai(m: Maker) -> Snippet:
        key = m.pick([
            f"sk-proj-{m.token(156, URLSAFE)}", f"sk-svcacct-{m.token(120, URLSAFE)}",
            f"sk-{m.token(20)}T3BlbkFJ{m.token(20)}", f"sk-admin-{m.token(110, URLSAFE)}",
        ])
        form = m.pick(["env", "code", "bare"])
        text = {"env": _env("OPENAI_API_KEY", key, m), "code": f'client = OpenAI(api_key="{key}")', "bare": key}[form]
        return Snippet(text, ("openai_api_key",), form)

    def anthropic(m: Maker) -> Snippet:
        key = f"sk-ant-api03-{m.token(93, URLSAFE)}AA"
        form = m.pick(["env", "header"])
        text = _env("ANTHROPIC_API_KEY", key, m) if form == "env" else f"x-api-key: {key}"
        return Snippet(text, ("anthropic_api_key",), form)

    def google_api(m: Maker) -> Snippet:
        key = f"AIza{m.token(35, URLSAFE)}"
        form = m.pick(["url", "env"])
        text = (f"https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key={key}" if form == "url"
                else _env("GOOGLE_API_KEY", key, m))
        return Snippet(text, ("google_api_key",), form)

    def google_oauth_secret(m: Maker) -> Snippet:
        secret = f"GOCSPX-{m.token(28, URLSAFE)}"
        client_id = f"{m.token(12, string.digits)}-{m.token(32, string.ascii_lowercase + string.digits)}"
        client_id += ".apps.googleusercontent.com"
        return Snippet(json.dumps({"client_id": client_id, "client_secret": secret}), ("google_oauth_secret",), "json")

    def google_oauth_token(m: Maker) -> Snippet:
        return Snippet(f"Authorization: Bearer ya29.{m.token(150, URLSAFE)}", ("google_oauth_token",), "header")

    def aws_pair(m: Maker) -> Snippet:
        key_id, secret = "AKIA" + m.token(16, BASE32), m.token(40, BASE64)
        form = m.pick(["credentials", "env", "inline"])
        text = {
            "credentials": f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}",
            "env": f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}",
            "inline": f"access key {key_id} and secret {secret}",
        }[form]
        return Snippet(text, ("aws_access_key", "aws_secret_key"), form)

    def aws_key_id(m: Maker) -> Snippet:
        key_id = m.pick(["AKIA", "ASIA"]) + m.token(16, BASE32)
        return Snippet(m.pick([f"the key id is {key_id}", f'"AccessKeyId": "{key_id}"']), ("aws_access_key",), "id")

    def aws_secret(m: Maker) -> Snippet:
        secret = m.token(40, BASE64)
        return Snippet(m.pick([f"aws_secret_access_key={secret}", f'"SecretAccessKey": "{secret}"']),
                       ("aws_secret_key",), "secret")

    def azure_connection(m: Maker) -> Snippet:
        account = m.fake.user_name().replace("_", "").replace(".", "")[:20]
        text = (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={m.token(86, BASE64)}==;"
                "EndpointSuffix=core.windows.net")
        return Snippet(text, ("azure_connection_string",), "connection")

    def azure_key(m: Maker) -> Snippet:
        return Snippet(f"AccountKey={m.token(86, BASE64)}==", ("azure_storage_key",), "key")

    def github(m: Maker) -> Snippet:
        token = m.pick([f"ghp_{m.token(36)}", f"gho_{m.token(36)}", f"ghs_{m.token(36)}",
                        f"github_pat_{m.token(22)}_{m.token(59)}"])
        form = m.pick(["env", "remote", "header"])
        text = {"env": _env("GITHUB_TOKEN", token, m),
                "remote": f"git remote set-url origin https://x-access-token:{token}@github.com/acme/api.git",
                "header": f"Authorization: token {token}"}[form]
        return Snippet(text, ("github_token",), form)

    def gitlab(m: Maker) -> Snippet:
        return Snippet(_env("GITLAB_TOKEN", f"glpat-{m.token(20, URLSAFE)}", m), ("gitlab_token",), "env")

    def slack_token(m: Maker) -> Snippet:
        token = f"xoxb-{m.token(12, string.digits)}-{m.token(13, string.digits)}-{m.token(24)}"
        return Snippet(_env("SLACK_BOT_TOKEN", token, m), ("slack_token",), "env")

    def slack_webhook(m: Maker) -> Snippet:
        url = f"https://hooks.slack.com/services/T{m.token(8, BASE32)}/B{m.token(10, BASE32)}/{m.token(24)}"
        return Snippet(m.pick([url, f"webhook_url: {url}"]), ("slack_webhook",), "url")

    def stripe(m: Maker) -> Snippet:
        key = m.pick([f"sk_live_{m.token(24)}", f"rk_live_{m.token(99)}"])
        text = m.pick([f"stripe.api_key = '{key}'", _env("STRIPE_SECRET_KEY", key, m)])
        return Snippet(text, ("stripe_key",), "code")

    def npm(m: Maker) -> Snippet:
        return Snippet(f"//registry.npmjs.org/:_authToken=npm_{m.token(36)}", ("npm_token",), "npmrc")

    def pypi(m: Maker) -> Snippet:
        token = f"pypi-AgEIcHlwaS5vcmc{m.token(140, URLSAFE)}"
        return Snippet(f"[pypi]\n  username = __token__\n  password = {token}", ("pypi_token",), "pypirc")

    def twilio(m: Maker) -> Snippet:
        return Snippet(f"TWILIO_API_KEY=SK{m.token(32, HEX)}", ("twilio_api_key",), "env")

    def sendgrid(m: Maker) -> Snippet:
        return Snippet(_env("SENDGRID_API_KEY", f"SG.{m.token(22, URLSAFE)}.{m.token(43, URLSAFE)}", m),
                       ("sendgrid_api_key",), "env")

    def huggingface(m: Maker) -> Snippet:
        token = f"hf_{m.token(34)}"
        return Snippet(m.pick([f"huggingface-cli login --token {token}", _env("HF_TOKEN", token, m)]),
                       ("huggingface_token",), "cli")

    def telegram(m: Maker) -> Snippet:
        return Snippet(f"bot = Bot('{m.token(10, string.digits)}:AA{m.token(33, URLSAFE)}')", ("telegram_bot_token",),
                       "code")

    def digitalocean(m: Maker) -> Snippet:
        return Snippet(f"doctl auth init -t dop_v1_{m.token(64, HEX)}", ("digitalocean_token",), "cli")

    def shopify(m: Maker) -> Snippet:
        return Snippet(f"X-Shopify-Access-Token: shpat_{m.token(32, HEX)}", ("shopify_token",), "header")

    def private_key(m: Maker) -> Snippet:
        key = m.pem()
        form = m.pick(["pem", "json"])
        if form == "json":
            return Snippet(json.dumps({"type": "service_account", "private_key": key + "\n"}), ("private_key",), form)
        return Snippet(key, ("private_key",), form)

    def jwt(m: Maker) -> Snippet:
        token = m.jwt()
        form = m.pick(["header", "cookie", "bare"])
        text = {"header": f"Authorization: Bearer {token}", "cookie": f"Cookie: session={token}", "bare": token}[form]
        return Snippet(text, ("jwt",), form)

    def connection_string(m: Maker) -> Snippet:
        user, password, host = m.fake.user_name(), m.password(), m.fake.domain_word()
        url = m.pick([
            f"postgresql://{user}:{password}@{host}.internal:5432/{m.fake.word()}",
            f"mysql://{user}:{password}@{host}.db.local:3306/shop",
            f"mongodb+srv://{user}:{password}@cluster0.{m.token(5, HEX)}.mongodb.net/app?retryWrites=true",
            f"redis://:{password}@{host}-cache:6379/0",
            f"amqps://{user}:{password}@{host}.mq.example.net:5671/%2F",
        ])
        # Passwords Faker makes may hold URL delimiters; real URLs percent-encode them.
        url = url.replace(password, password.replace("@", "%40").replace("/", "%2F").replace("#", "%23"))
        return Snippet(_env("DATABASE_URL", url, m), ("connection_string",), "url")

    def bearer(m: Maker) -> Snippet:
        return Snippet(f"curl -H 'Authorization: Bearer {m.token(40, URLSAFE)}' https://api.{m.fake.domain_name()}/v2/me",
                       ("bearer_token",), "curl")

    def basic(m: Maker) -> Snippet:
        credentials = base64.b64encode(f"{m.fake.user_name()}:{m.password()}".encode()).decode()
        return Snippet(f"Authorization: Basic {credentials}", ("basic_auth",), "header")

    def password(m: Maker) -> Snippet:
        value = m.password()
        user = m.fake.user_name()
        form = m.pick(["env", "json", "yaml", "prose", "docker", "cli", "json-pass", "k8s"])
        text = {
            "env": f"DB_PASSWORD={value}", "json": json.dumps({"username": user, "password": value}),
            "yaml": f"smtp:\n  user: {user}\n  password: {value}", "prose": f"the admin password is {value}",
            "docker": f"docker run -e POSTGRES_PASSWORD={value} -p 5432:5432 postgres:16",
            "cli": f"mysql -h db.internal -u {user} --password='{value}' shop",
            "json-pass": json.dumps({"user": user, "pass": value}),
            "k8s": "apiVersion: v1\nkind: Secret\ndata:\n  password: " + base64.b64encode(value.encode()).decode(),
        }[form]
        return Snippet(text, ("password",), form)

    def generic(m: Maker) -> Snippet:
        value = m.pick([m.token(32, HEX), m.token(40), m.token(24, URLSAFE), m.fake.uuid4(), f"key-{m.token(32, HEX)}"])
        name = m.pick([
            "API_KEY", "apiKey", "client_secret", "SECRET_KEY", "auth_token", "X-Api-Key", "access_token",
            "DD_API_KEY", "HEROKU_API_KEY", "MAILGUN_API_KEY", "refresh_token", "webhook_secret",
        ])
        form = m.pick(["env", "json", "header", "query"])
        text = {"env": f"{name.upper().replace('-', '_')}={value}", "json": json.dumps({name: value}),
                "header": f"{name}: {value}",
                "query": f"https://api.{m.fake.domain_name()}/v1/export?format=csv&{name.lower()}={value}"}[form]
        return Snippet(text, ("generic_secret",), form)

    def groq(m: Maker) -> Snippet:
        key = f"gsk_{m.token(52)}"
        form = m.pick(["env", "code"])
        text = _env("GROQ_API_KEY", key, m) if form == "env" else f'client = Groq(api_key="{key}")'
        return Snippet(text, ("groq_api_key",), form)

    def openrouter(m: Maker) -> Snippet:
        key = f"sk-or-v1-{m.token(64, HEX)}"
        return Snippet(f"Authorization: Bearer {key}", ("openrouter_api_key",), "header")

    def linear(m: Maker) -> Snippet:
        return Snippet(_env("LINEAR_API_KEY", f"lin_api_{m.token(40)}", m), ("linear_api_key",), "env")

    def vault(m: Maker) -> Snippet:
        token = m.pick([f"hvs.{m.token(24)}", f"hvs.{m.token(95, URLSAFE)}", f"hvb.{m.token(140, URLSAFE)}"])
        form = m.pick(["env", "header"])
        text = _env("VAULT_TOKEN", token, m) if form == "env" else f"X-Vault-Token: {token}"
        return Snippet(text, ("vault_token",), form)

    def terraform(m: Maker) -> Snippet:
        token = f"{m.token(14)}.atlasv1.{m.token(67, URLSAFE)}"
        return Snippet(f'credentials "app.terraform.io" {{\n  token = "{token}"\n}}', ("terraform_token",), "hcl")

    def azure_client_secret(m: Maker) -> Snippet:
        secret = f"{m.token(3)}{m.token(1, string.digits)}Q~{m.token(34, URLSAFE.replace('-', '') + '.~')}"
        form = m.pick(["env", "json"])
        text = (_env("AZURE_CLIENT_SECRET", secret, m) if form == "env"
                else json.dumps({"tenant": m.fake.uuid4(), "appId": m.fake.uuid4(), "password": secret}))
        return Snippet(text, ("azure_client_secret",), form)

    return {
        "groq_api_key": groq, "openrouter_api_key": openrouter, "linear_api_key": linear, "vault_token": vault,
        "terraform_token": terraform, "azure_client_secret": azure_client_secret,
        "openai_api_key": openai, "anthropic_api_key": anthropic, "google_api_key": google_api,
        "google_oauth_secret": google_oauth_secret, "google_oauth_token": google_oauth_token,
        "aws_pair": aws_pair, "aws_access_key": aws_key_id, "aws_secret_key": aws_secret,
        "azure_connection_string": azure_connection, "azure_storage_key": azure_key, "github_token": github,
        "gitlab_token": gitlab, "slack_token": slack_token, "slack_webhook": slack_webhook, "stripe_key": stripe,
        "npm_token": npm, "pypi_token": pypi, "twilio_api_key": twilio, "sendgrid_api_key": sendgrid,
        "huggingface_token": huggingface, "telegram_bot_token": telegram, "digitalocean_token": digitalocean,
        "shopify_token": shopify, "private_key": private_key, "jwt": jwt, "connection_string": connection_string,
        "bearer_token": bearer, "basic_auth": basic, "password": password, "generic_secret": generic,
    }


def _more_kinds() -> dict[str, Callable[[Maker], Snippet]]:
    """Provider formats added later, drawn from their own seed so the items above stay as they were."""

    def kind(name: str, env: str, make: Callable[[Maker], str]) -> Callable[[Maker], Snippet]:
        def snippet(m: Maker) -> Snippet:
            value = make(m)
            form = m.pick(["env", "json", "bare"])
            text = {"env": _env(env, value, m), "json": json.dumps({env.lower(): value}),
                    "bare": f"{env.split('_')[0].title()} credential: {value}"}[form]
            return Snippet(text, (name,), form)

        return snippet

    upper_digits = string.ascii_uppercase + string.digits
    return {
        "perplexity_api_key": kind("perplexity_api_key", "PERPLEXITY_API_KEY", lambda m: f"pplx-{m.token(48)}"),
        "replicate_api_token": kind("replicate_api_token", "REPLICATE_API_TOKEN", lambda m: f"r8_{m.token(37)}"),
        "xai_api_key": kind("xai_api_key", "XAI_API_KEY", lambda m: f"xai-{m.token(80)}"),
        "fireworks_api_key": kind("fireworks_api_key", "FIREWORKS_API_KEY", lambda m: f"fw_{m.token(24)}"),
        "together_api_key": kind("together_api_key", "TOGETHER_API_KEY", lambda m: f"tgp_v1_{m.token(43, URLSAFE)}"),
        "langsmith_api_key": kind("langsmith_api_key", "LANGSMITH_API_KEY",
                                  lambda m: f"lsv2_{m.pick(['pt', 'sk'])}_{m.token(32, HEX)}_{m.token(10, HEX)}"),
        "pinecone_api_key": kind("pinecone_api_key", "PINECONE_API_KEY", lambda m: f"pcsk_{m.token(6)}_{m.token(60)}"),
        "vault_token": kind("vault_token", "VAULT_TOKEN", lambda m: f"s.{m.token(24)}"),
        "doppler_token": kind("doppler_token", "DOPPLER_TOKEN",
                              lambda m: f"dp.{m.pick(['pt', 'st', 'sa'])}.{m.token(43)}"),
        "onepassword_token": kind("onepassword_token", "OP_SERVICE_ACCOUNT_TOKEN", lambda m: "ops_" + m.b64url(
            json.dumps({"signInAddress": "my.1password.com", "userAuth": {"method": "SRPg-4096"},
                        "email": f"{m.token(12).lower()}@1passwordserviceaccounts.com",
                        "srpX": m.token(64, HEX)}).encode())),
        "pulumi_token": kind("pulumi_token", "PULUMI_ACCESS_TOKEN", lambda m: f"pul-{m.token(40, HEX)}"),
        "databricks_token": kind("databricks_token", "DATABRICKS_TOKEN", lambda m: f"dapi{m.token(32, HEX)}"),
        "grafana_token": kind("grafana_token", "GRAFANA_TOKEN", lambda m: m.pick([
            f"glsa_{m.token(32)}_{m.token(8, HEX)}", f"glc_{m.token(120, BASE64)}=="])),
        "newrelic_key": kind("newrelic_key", "NEW_RELIC_API_KEY", lambda m: f"NRAK-{m.token(27, upper_digits)}"),
        "sentry_token": kind("sentry_token", "SENTRY_AUTH_TOKEN", lambda m: m.pick([
            f"sntryu_{m.token(64, HEX)}",
            "sntrys_" + m.b64url(json.dumps({"iat": m.rng.randrange(1_700_000_000, 1_750_000_000),
                                             "url": "https://sentry.io", "org": m.fake.domain_word()}).encode())
            + "_" + m.token(43, URLSAFE)])),
        "postman_api_key": kind("postman_api_key", "POSTMAN_API_KEY",
                                lambda m: f"PMAK-{m.token(24, HEX)}-{m.token(34, HEX)}"),
        "notion_token": kind("notion_token", "NOTION_TOKEN", lambda m: m.pick([
            f"secret_{m.token(43)}", f"ntn_{m.token(11, string.digits)}{m.token(35)}"])),
        "figma_token": kind("figma_token", "FIGMA_TOKEN", lambda m: f"figd_{m.token(40, URLSAFE)}"),
        "supabase_token": kind("supabase_token", "SUPABASE_ACCESS_TOKEN", lambda m: f"sbp_{m.token(40, HEX)}"),
        "planetscale_token": kind("planetscale_token", "PLANETSCALE_TOKEN",
                                  lambda m: f"pscale_{m.pick(['tkn', 'pw'])}_{m.token(43, URLSAFE)}"),
        "atlassian_token": kind("atlassian_token", "JIRA_API_TOKEN",
                                lambda m: f"ATATT3xFfGF0{m.token(170, URLSAFE)}={m.token(8, HEX).upper()}"),
        "square_token": kind("square_token", "SQUARE_ACCESS_TOKEN", lambda m: m.pick([
            f"EAAA{m.token(60, URLSAFE)}", f"sq0atp-{m.token(22, URLSAFE)}", f"sq0csp-{m.token(43, URLSAFE)}"])),
        "mailchimp_api_key": kind("mailchimp_api_key", "MAILCHIMP_API_KEY",
                                  lambda m: f"{m.token(32, HEX)}-us{m.rng.randrange(1, 21)}"),
        "heroku_api_key": kind("heroku_api_key", "HEROKU_API_KEY", lambda m: f"HRKU-{m.token(60, URLSAFE)}"),
        "docker_token": kind("docker_token", "DOCKERHUB_TOKEN", lambda m: f"dckr_pat_{m.token(27, URLSAFE)}"),
        "stripe_test_key": kind("stripe_key", "STRIPE_SECRET_KEY", lambda m: m.pick([
            f"sk_test_{m.token(24)}", f"rk_test_{m.token(99)}", f"whsec_{m.token(32)}"])),
        "okta_token": lambda m: Snippet(
            f"curl -H 'Authorization: SSWS 00{m.token(40, URLSAFE)}' https://{m.fake.domain_word()}.okta.com/api/v1/users",
            ("okta_token",), "curl"),
        "discord_token": kind("discord_token", "DISCORD_BOT_TOKEN",
                              lambda m: f"{m.pick(['MT', 'OD', 'Nz'])}{m.token(24)}.{m.token(6, URLSAFE)}."
                                        f"{m.token(38, URLSAFE)}"),
        "discord_webhook": lambda m: Snippet(
            f"https://discord.com/api/webhooks/{m.token(19, string.digits)}/{m.token(68, URLSAFE)}",
            ("discord_webhook",), "url"),
    }


# --------------------------------------------------------------------------- negative snippets


def _lookalikes() -> list[Callable[[Maker], Snippet]]:
    def snippet(form: str, build: Callable[[Maker], str]) -> Callable[[Maker], Snippet]:
        return lambda m: Snippet(build(m), (), form)

    return [
        snippet("openai-placeholder", lambda m: m.pick([
            "OPENAI_API_KEY=sk-...", "OPENAI_API_KEY=<your-openai-key>", 'client = OpenAI(api_key="sk-your-key-here")',
            "export OPENAI_API_KEY=YOUR_API_KEY"])),
        snippet("aws-docs", lambda m: m.pick([
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_ACCESS_KEY_ID=AKIAXXXXXXXXXXXXXXXX", "aws_access_key_id = <your-access-key-id>"])),
        snippet("uuid", lambda m: f"request_id: {m.fake.uuid4()}, trace_id={m.token(32, HEX)}"),
        snippet("git-sha", lambda m: f"Merge commit {m.token(40, HEX)} into main (parent {m.token(7, HEX)})"),
        snippet("hashes", lambda m: m.pick([
            f"sha256: {m.token(64, HEX)}", f"md5 {m.token(32, HEX)}  backup.tar.gz",
            f"image: registry.example.com/api@sha256:{m.token(64, HEX)}",
            f'"integrity": "sha512-{m.token(86, BASE64)}=="'])),
        snippet("masked", lambda m: m.pick([
            "password: ********", "DB_PASSWORD=", "api_key: [REDACTED]", "token: ***redacted***",
            "password = '<your-password>'"])),
        snippet("env-reference", lambda m: m.pick([
            'api_key = os.environ["OPENAI_API_KEY"]', "password: ${DB_PASSWORD}", "token = process.env.GITHUB_TOKEN",
            "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}", 'secret_key = settings.SECRET_KEY',
            "password = getpass.getpass()"])),
        snippet("url-placeholder", lambda m: m.pick([
            "postgres://user:password@localhost:5432/mydb", "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app",
            "redis://localhost:6379/0", f"https://{m.fake.domain_name()}/login?next=/dashboard",
            "mongodb://username:password@host:27017/database"])),
        snippet("public-key", lambda m: m.pick([
            f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{m.token(43, BASE64)} {m.fake.user_name()}@laptop",
            f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{m.token(300, BASE64)} deploy@ci",
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + m.token(52, BASE64)
            + "\n" + m.token(36, BASE64) + "==\n-----END PUBLIC KEY-----"])),
        snippet("certificate", lambda m: "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE" + "\n".join(
            m.token(64, BASE64) for _ in range(4)) + "\n-----END CERTIFICATE-----"),
        snippet("pem-placeholder", lambda m: m.pick([
            "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            "Paste the key between -----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY----- lines.",
            "private_key: /etc/ssl/private/server.key"])),
        snippet("publishable", lambda m: f"Stripe.setPublishableKey('pk_live_{m.token(24)}')"),
        snippet("pagination", lambda m: m.pick([
            json.dumps({"items": [], "nextPageToken": m.token(48, URLSAFE)}),
            f"next_page_token={m.token(32, URLSAFE)}&page_size=50", f'"cursor": "{m.token(40, BASE64)}"'])),
        snippet("token-counts", lambda m: m.pick([
            f"max_tokens: {m.rng.randrange(256, 8192)}, temperature: 0.{m.rng.randrange(1, 9)}",
            f"usage: prompt_tokens={m.rng.randrange(10, 999)} completion_tokens={m.rng.randrange(10, 999)}",
            f"The tokenizer produced {m.rng.randrange(100, 9000)} tokens."])),
        snippet("security-prose", lambda m: m.pick([
            "Rotate API keys every 90 days and never commit secrets to the repository.",
            "A JWT has three parts: header, payload and signature, each base64url-encoded (they start with eyJ).",
            "GitHub personal access tokens start with ghp_ and AWS key ids with AKIA.",
            "Use a Bearer token in the Authorization header; basic authentication is disabled.",
            "The secret is in the vault; the password policy requires 12 characters."])),
        snippet("docs-example-token", lambda m: m.pick([
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "xoxb-your-bot-token",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "sk-1234567890abcdef1234567890abcdef", "glpat-XXXXXXXXXXXXXXXXXXXX"])),
        snippet("ids", lambda m: m.pick([
            f"order #{m.rng.randrange(10**7, 10**8)} shipped to warehouse "
            f"{m.token(4, string.ascii_uppercase)}-{m.rng.randrange(10, 99)}",
            f"user_id={m.rng.randrange(10**9, 10**10)} session_id={m.fake.uuid4()}",
            f"job {m.token(8, HEX)}-{m.token(4, HEX)} finished in {m.rng.randrange(1, 500)}ms"])),
        snippet("base64-data", lambda m: f"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{m.token(60, BASE64)}"),
        snippet("non-secret-keys", lambda m: m.pick([
            json.dumps({"Key": f"uploads/{m.moment():%Y/%m/%d}/{m.token(12, HEX)}.jpg", "ETag": m.token(32, HEX)}),
            json.dumps({"public_key": m.token(44, BASE64), "key_id": m.token(16, HEX)}),
            f"secret_name: prod/{m.fake.word()}/credentials", json.dumps({"token_type": "bearer", "expires_in": 3600}),
            f"sort_key = {m.token(20, ALNUM)}", f"cache key: user:{m.rng.randrange(1000, 99999)}:profile"])),
        snippet("password-prose", lambda m: m.pick([
            "The password must contain at least 12 characters, one digit and one symbol.",
            "password reset emails are sent from the auth service",
            "Forgot password? Click the link we emailed you.",
            f"passwordless login via magic link expires in {m.rng.randrange(5, 60)} minutes"])),
    ]


def _more_lookalikes() -> list[Callable[[Maker], Snippet]]:
    """Placeholders and documentation values of the formats of `_more_kinds`."""

    def snippet(form: str, build: Callable[[Maker], str]) -> Callable[[Maker], Snippet]:
        return lambda m: Snippet(build(m), (), form)

    return [
        snippet("provider-placeholder", lambda m: m.pick([
            "PERPLEXITY_API_KEY=pplx-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "export REPLICATE_API_TOKEN=r8_<your-token>", "XAI_API_KEY=xai-YOUR_KEY_HERE",
            'together.api_key = "tgp_v1_..."', "LANGSMITH_API_KEY=lsv2_pt_...",
            "VAULT_TOKEN=s.XXXXXXXXXXXXXXXXXXXXXXXX",
            "DOPPLER_TOKEN=dp.st.dev.xxxxxxxx", "NEW_RELIC_API_KEY=NRAK-XXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "NOTION_TOKEN=secret_your_integration_token", "STRIPE_SECRET_KEY=sk_test_...",
            "DOCKERHUB_TOKEN=dckr_pat_REPLACE_ME", "MAILCHIMP_API_KEY=<api-key>-us21"])),
        snippet("format-prose", lambda m: m.pick([
            "Groq keys start with gsk_, OpenRouter keys with sk-or-v1- and Perplexity keys with pplx-.",
            "HashiCorp Vault service tokens begin with hvs. (older ones with s.), batch tokens with hvb.",
            "Grafana service account tokens look like glsa_ followed by 32 characters and a checksum.",
            "Create a Postman API key (PMAK-...) under Settings, then paste it into the CLI.",
            "Docker Hub personal access tokens (dckr_pat_) replace passwords for docker login.",
            "A Sentry DSN is public; the auth token (sntrys_ or sntryu_) is not."])),
        snippet("prefixed-ids", lambda m: m.pick([
            f"fw_version={m.rng.randrange(1, 9)}.{m.rng.randrange(0, 20)} serial={m.token(12, HEX)}",
            f"dapi_timeout=30 dapi_retries=3 region=us-{m.pick(['east', 'west'])}-2",
            f"the s.{m.fake.word()} attribute is set in settings.py",
            f"key-value store: key-{m.fake.word()} -> {m.fake.word()}",
            f"rnd_seed={m.rng.randrange(1, 10**6)} pat_count={m.rng.randrange(1, 99)}",
            f"sl.{m.fake.word()}.{m.fake.word()}.com resolved in {m.rng.randrange(1, 90)} ms"])),
        snippet("hex-with-region", lambda m: m.pick([
            f"deploy {m.token(32, HEX)} to eu-west-1 and us-east-2",
            f"bucket logs-{m.token(8, HEX)}-us-east-1 holds {m.rng.randrange(10, 999)} objects",
            f"commit {m.token(40, HEX)} (SK-{m.rng.randrange(1000, 9999)} ticket)"])),
    ]


def _benign(m: Maker) -> Snippet:
    builders = [
        lambda: m.fake.paragraph(nb_sentences=4),
        lambda: "SELECT id, email_verified, created_at FROM users "
                f"WHERE created_at > '{m.moment():%Y-%m-%d}' LIMIT 50;",
        lambda: "def retry(fn, attempts=3):\n    for attempt in range(attempts):\n        try:\n"
                "            return fn()\n        except TimeoutError:\n            time.sleep(2 ** attempt)\n"
                "    raise RuntimeError('gave up')",
        lambda: f"{m.moment().isoformat()} INFO worker-{m.rng.randrange(1, 9)} "
                f"processed {m.rng.randrange(10, 900)} jobs",
        lambda: json.dumps({"timeout_s": m.rng.randrange(5, 60), "retries": 3, "feature_flags": {"beta": True}}),
        lambda: f"git log --oneline -n 5 && git checkout -b fix/{m.fake.word()}-{m.fake.word()}",
        lambda: f"Meeting notes {m.moment():%Y-%m-%d}: {m.fake.sentence()} Action items: {m.fake.sentence()}",
        lambda: f"The {m.fake.word()} service returns HTTP {m.pick([400, 404, 429, 503])} when the queue is full.",
        lambda: "docker compose up -d && docker compose logs -f api",
        lambda: f"Summarise: {m.fake.text(max_nb_chars=300)}",
    ]
    index = m.rng.randrange(len(builders))
    return Snippet(builders[index](), (), f"benign-{index}")


# --------------------------------------------------------------------------- carriers

SHELL_TOOL = {"name": "run_shell", "description": "Run a shell command on the build machine",
              "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
WRITE_TOOL = {"name": "write_file", "description": "Write a file in the workspace",
              "parameters": {"type": "object",
                             "properties": {"path": {"type": "string"}, "content": {"type": "string"}}}}
HTTP_TOOL = {"name": "http_request", "description": "Send an HTTP request",
             "parameters": {"type": "object", "properties": {"url": {"type": "string"}, "body": {"type": "string"}}}}
READ_TOOL = {"name": "read_file", "description": "Read a file from the repository",
             "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
SEARCH_TOOL = {"name": "search_logs", "description": "Search the application logs",
               "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}
OFFERED = [SHELL_TOOL, WRITE_TOOL, HTTP_TOOL, READ_TOOL, SEARCH_TOOL]

PROMPTS = [
    "I'm getting a 401 from the API. Here's my config:\n\n{s}\n\nWhat am I doing wrong?",
    "Can you convert this to YAML for our Helm chart?\n{s}",
    "Why does this fail?\n```\n{s}\n```\nThe error is: connection refused.",
    "Quick question about this line: {s} — is the format right?",
    "Review this before I commit it:\n\nimport os\nimport requests\n\n{s}\n\ndef main():\n    run()\n",
    "hey, the nightly job broke again. I have {s} in the CI settings, any idea?",
]
ANSWERS = [
    "Sure! Put this in your environment:\n\n{s}\n\nThen restart the service.",
    "The configuration should look like this:\n```\n{s}\n```\nLet me know if it still fails.",
    "I found this in the logs you shared: {s}. You may want to look into it.",
    "Here is the corrected snippet:\n{s}\nThe rest of the file can stay as it is.",
]


def _carry(m: Maker, snippet: Snippet) -> tuple[str, dict[str, Any]]:
    """(carrier name, hook fields) placing `snippet` in a prompt, a tool call, a tool result or an answer."""
    hook = m.pick(["on_model_call", "on_model_call", "on_tool_call", "on_tool_response", "on_model_response"])
    text = snippet.text
    if hook == "on_model_call":
        index = m.rng.randrange(len(PROMPTS))
        return f"prompt-{index}", {"hook": hook, "text": PROMPTS[index].format(s=text)}
    if hook == "on_model_response":
        index = m.rng.randrange(len(ANSWERS))
        return f"answer-{index}", {"hook": hook, "text": ANSWERS[index].format(s=text)}
    if hook == "on_tool_call":
        tool, args = m.pick([
            (WRITE_TOOL, {"path": m.pick([".env", "config/settings.yaml", "deploy/values.yaml"]), "content": text}),
            (HTTP_TOOL, {"url": f"https://hooks.{m.fake.domain_name()}/notify", "body": text}),
            (SHELL_TOOL, {"command": f"cat >> ~/.profile <<'EOF'\n{text}\nEOF"}),
        ])
        return f"call-{tool['name']}", {"hook": hook, "tool": tool, "args": args, "offered_tools": OFFERED}
    tool, response = m.pick([
        (READ_TOOL, {"path": m.pick([".env", "config/prod.json", "README.md"]), "content": f"# settings\n{text}\n"}),
        (SHELL_TOOL, {"exit_code": 0, "stdout": f"$ cat deploy.log\n{text}\n", "stderr": ""}),
        (SEARCH_TOOL, {"matches": [{"line": m.rng.randrange(1, 900), "text": text}]}),
    ])
    return f"result-{tool['name']}", {"hook": hook, "tool": tool, "response": response}


# --------------------------------------------------------------------------- assembly


def _split(group: str) -> str:
    return split_of(group, salt=DETECTOR)


_Record = tuple[str, str, tuple[str, ...], dict[str, Any]]


def _positives(m: Maker, kinds: dict[str, Callable[[Maker], Snippet]]) -> list[_Record]:
    """POSITIVES_PER_KIND rounds of one snippet of every kind, each in a carrier."""
    records: list[_Record] = []
    for _ in range(POSITIVES_PER_KIND):
        for name, make in kinds.items():
            snippet = make(m)
            carrier, fields = _carry(m, snippet)
            records.append(("positive", f"{name}/{snippet.form}/{carrier}", snippet.kinds, fields))
    return records


def _lookalike_rounds(m: Maker, makers: list[Callable[[Maker], Snippet]], rounds: int) -> list[_Record]:
    """`rounds` rounds of every look-alike maker, each in a carrier."""
    records: list[_Record] = []
    for round_index in range(rounds):
        for make in makers:
            snippet = make(m)
            carrier, fields = _carry(m, snippet)
            records.append(("benign_lookalike", f"{snippet.form}/{carrier}/{round_index % 2}", (), fields))
    return records


def build() -> list[dict[str, Any]]:
    """Every item of the corpus, in a fixed order."""
    m = Maker(SEED)
    records = _positives(m, _kinds()) + _lookalike_rounds(m, _lookalikes(), 5)
    for _ in range(110):
        snippet = _benign(m)
        carrier, fields = _carry(m, snippet)
        records.append(("benign", f"{snippet.form}/{carrier}", (), fields))
    more = Maker(MORE_SEED)
    records += _positives(more, _more_kinds()) + _lookalike_rounds(more, _more_lookalikes(), 8)
    return number_items(DETECTOR, (
        {GROUP_KEY: group, "hook": fields["hook"], "label": category == "positive", "kinds": sorted(kinds),
         "category": category, "source": SOURCE, **{key: value for key, value in fields.items() if key != "hook"}}
        for category, group, kinds, fields in records
    ), split=_split)


def main() -> None:
    items = build()
    write_corpus(OUTPUT, items)
    print(category_summary(OUTPUT, items))


if __name__ == "__main__":
    main()
