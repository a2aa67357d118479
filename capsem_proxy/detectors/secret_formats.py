"""Credential formats recognisable by a provider's documented prefix and shape.

Each format is a regex whose named group `body` is the random part, the literals that must occur
for the regex to run (`secrets` prefilters every rule with one Aho-Corasick pass: a literal is a
part of the prefix every match holds, chosen, where the prefix allows, to start with a character
other literals start with, since each new first character costs the pass on every character of
every text: `_org_` for `api_org_`, `ey-` for `key-`), and how random the body
must look (Shannon entropy in bits per character; placeholders such as `xxxx` or
`your-token-here` are refused by the detector whatever their entropy). A prefix that ordinary
words could start (`s.` of legacy Vault tokens, `key-` of Mailgun) also asks for a body mixing
character classes (`mixed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PREFIXED_FORMATS", "TokenFormat"]

_L = r"(?<![A-Za-z0-9_-])"  # no token character just before
_R = r"(?![A-Za-z0-9_-])"  # nor just after


def _lead(prefix: str) -> str:
    """`prefix` with no token character just before it, written literal first: `re` then finds the
    prefix with a fast substring search instead of trying a look-behind at every position (on a
    2 KB text that ran 20 to 100 µs per rule whenever a common literal such as `pat` let it run)."""
    escaped = re.escape(prefix)
    return rf"{escaped}(?<![A-Za-z0-9_-]{escaped})"


@dataclass(frozen=True, slots=True)
class TokenFormat:
    kind: str
    pattern: str
    literals: tuple[str, ...]
    min_entropy: float = 3.0
    # The body must hold letters and digits (and both cases when the alphabet has them).
    mixed: bool = False
    lowercase_literals: bool = False
    priority: int = 85
    # The part of the match that is the secret (0: all of it).
    group: int | str = 0
    # For a pattern whose literal is not at its start: how far before each occurrence of the
    # (single) literal the match starts.
    back: int = 0


PREFIXED_FORMATS: tuple[TokenFormat, ...] = (
    # Inference APIs.
    TokenFormat("perplexity_api_key", _lead("pplx-") + r"(?P<body>[A-Za-z0-9]{40,64})" + _R, ("pplx-",)),
    TokenFormat("replicate_api_token", _lead("r8_") + r"(?P<body>[A-Za-z0-9]{37})" + _R, ("r8_",)),
    TokenFormat("xai_api_key", _lead("xai-") + r"(?P<body>[A-Za-z0-9]{70,90})" + _R, ("xai-",)),
    TokenFormat("fireworks_api_key", _lead("fw_") + r"(?P<body>[A-Za-z0-9]{20,48})" + _R, ("fw_",), mixed=True),
    TokenFormat("together_api_key", _lead("tgp_v1_") + r"(?P<body>[A-Za-z0-9_-]{30,64})" + _R, ("_v1_",)),
    TokenFormat("huggingface_token", _lead("api_org_") + r"(?P<body>[A-Za-z0-9]{34})" + _R, ("_org_",)),
    TokenFormat("langsmith_api_key", _lead("lsv2_") + r"(?:pt|sk)_(?P<body>[a-f0-9]{32})_[a-f0-9]{10}" + _R,
                ("lsv2_",)),
    TokenFormat("pinecone_api_key", _lead("pcsk_") + r"(?P<body>[A-Za-z0-9_]{50,90})" + _R, ("pcsk_",)),
    TokenFormat("tavily_api_key", _lead("tvly-") + r"(?:dev-|prod-)?(?P<body>[A-Za-z0-9]{32})" + _R, ("ly-",)),
    TokenFormat("firecrawl_api_key", _lead("fc-") + r"(?P<body>[a-f0-9]{32})" + _R, ("fc-",)),
    TokenFormat("elevenlabs_api_key", _lead("sk_") + r"(?P<body>[a-f0-9]{48})" + _R, ("sk_",)),
    # Secret managers and infrastructure.
    TokenFormat(
        # Legacy service tokens (before Vault 1.10): `s.` is too common a prefix to read alone, so
        # they are looked for where Vault is named (`VAULT_TOKEN=`, `X-Vault-Token:`).
        "vault_token", r"(?<![A-Za-z0-9_.-])s\.(?P<body>[A-Za-z0-9]{24})(?![A-Za-z0-9_.-])", ("vault",),
        min_entropy=3.8, mixed=True, priority=60, lowercase_literals=True,
    ),
    TokenFormat("doppler_token", _lead("dp.") + r"(?:pt|st|sa|ct|scim|audit)\.(?P<body>[A-Za-z0-9]{40,44})" + _R,
                ("dp.",)),
    TokenFormat("onepassword_token", _lead("ops_") + r"(?P<body>eyJ[A-Za-z0-9+/=_-]{100,})", ("s_eyJ",)),
    TokenFormat("pulumi_token", _lead("pul-") + r"(?P<body>[a-f0-9]{40})" + _R, ("pul-",)),
    TokenFormat("databricks_token", _lead("dapi") + r"(?P<body>[a-f0-9]{32})(?:-\d)?" + _R, ("dapi",)),
    TokenFormat("grafana_token", _lead("glsa_") + r"(?P<body>[A-Za-z0-9]{32})_[A-Fa-f0-9]{8}" + _R, ("glsa_",)),
    TokenFormat(
        "grafana_token", _lead("glc_") + r"(?P<body>[A-Za-z0-9+/]{32,400}={0,2})(?![A-Za-z0-9+/=_-])", ("glc_",)
    ),
    TokenFormat("newrelic_key", _lead("NR") + r"(?:AK|II|AA)-(?P<body>[A-Z0-9]{27})" + _R, ("NRAK-", "NRII-", "NRAA-")),
    TokenFormat("newrelic_key", _lead("NRJS-") + r"(?P<body>[a-f0-9]{19})" + _R, ("NRJS-",)),
    TokenFormat("sentry_token", _lead("sntrys_") + r"(?P<body>eyJ[A-Za-z0-9+/=_-]{60,})", ("sntrys_",)),
    TokenFormat("sentry_token", _lead("sntryu_") + r"(?P<body>[a-f0-9]{64})" + _R, ("sntryu_",)),
    TokenFormat("postman_api_key", _lead("PMAK-") + r"(?P<body>[a-f0-9]{24}-[a-f0-9]{34})" + _R, ("PMAK-",)),
    TokenFormat("notion_token", _lead("secret_") + r"(?P<body>[A-Za-z0-9]{43})" + _R, ("secret_",), mixed=True),
    TokenFormat("notion_token", _lead("ntn_") + r"(?P<body>[A-Za-z0-9]{40,50})" + _R, ("ntn_",)),
    TokenFormat("figma_token", _lead("figd_") + r"(?P<body>[A-Za-z0-9_-]{36,64})" + _R, ("gd_",)),
    TokenFormat("supabase_token", _lead("sbp_") + r"(?:oauth_)?(?P<body>[a-f0-9]{40})" + _R, ("sbp_",)),
    TokenFormat("supabase_token", _lead("sb_secret_") + r"(?P<body>[A-Za-z0-9_-]{30,64})" + _R, ("sb_secret_",)),
    TokenFormat("planetscale_token", _lead("pscale_") + r"(?:tkn|pw|oauth)_(?P<body>[A-Za-z0-9_.-]{32,64})" + _R,
                ("pscale_",)),
    TokenFormat("atlassian_token", _lead("ATATT") + r"(?P<body>[A-Za-z0-9_=-]{150,300})" + _R, ("ATATT",)),
    TokenFormat("atlassian_token", _lead("ATCTT") + r"(?P<body>[A-Za-z0-9_=-]{150,300})" + _R, ("ATCTT",)),
    TokenFormat("square_token", _lead("sq0") + r"(?:atp|csp)-(?P<body>[A-Za-z0-9_-]{22,43})" + _R,
                ("sq0atp-", "sq0csp-")),
    TokenFormat("square_token", _lead("EAAA") + r"(?P<body>[A-Za-z0-9_-]{60})" + _R,
                ("AAA",), min_entropy=4.0, mixed=True),
    TokenFormat("mailgun_api_key", _lead("key-") + r"(?P<body>[a-f0-9]{32})" + _R, ("ey-",), mixed=True),
    # The key's random part comes before the literal (`<32 hex>-us21`): matched from 32 characters
    # before each `-us` found, never tried at every position.
    TokenFormat("mailchimp_api_key", _L + r"(?P<body>[a-f0-9]{32})-us\d{1,2}" + _R, ("-us",), mixed=True, back=32),
    TokenFormat("brevo_api_key", _lead("xkeysib-") + r"(?P<body>[a-f0-9]{64})-[A-Za-z0-9]{16}" + _R, ("xkeysib-",)),
    TokenFormat("heroku_api_key", _lead("HRKU-") + r"(?P<body>[A-Za-z0-9_-]{58,64})" + _R, ("HRKU-",)),
    TokenFormat("cloudflare_key", _lead("v1.0-") + r"[a-f0-9]{24}-(?P<body>[a-f0-9]{146})" + _R, (".0-",)),
    TokenFormat("docker_token", _lead("dckr_") + r"(?:pat|oat)_(?P<body>[A-Za-z0-9_-]{27,40})" + _R, ("dckr_",)),
    TokenFormat("okta_token", r"(?i:ssws)[ \t]+(?P<body>00[A-Za-z0-9_-]{40})" + _R, ("ssws",), lowercase_literals=True,
                group="body"),
    TokenFormat("netlify_token", _lead("nf") + r"[pcu]_(?P<body>[A-Za-z0-9]{36,40})" + _R, ("nfp_", "nfc_", "nfu_")),
    TokenFormat("render_api_key", _lead("rnd_") + r"(?P<body>[A-Za-z0-9]{32})" + _R, ("nd_",), mixed=True),
    TokenFormat("airtable_token", _lead("pat") + r"[A-Za-z0-9]{14}\.(?P<body>[a-f0-9]{64})" + _R, ("pat",)),
    TokenFormat("dropbox_token", _lead("sl.") + r"(?P<body>[A-Za-z0-9_-]{130,1400})" + _R, ("sl.",), min_entropy=4.0),
    TokenFormat("contentful_token", _lead("CFPAT-") + r"(?P<body>[A-Za-z0-9_-]{43})" + _R, ("PAT-",)),
    TokenFormat("mapbox_token", _lead("sk.") + r"(?P<body>eyJ[A-Za-z0-9_-]{50,}\.[A-Za-z0-9_-]{20,})" + _R,
                ("sk.eyJ",)),
    TokenFormat("buildkite_token", _lead("bkua_") + r"(?P<body>[a-f0-9]{40})" + _R, ("bkua_",)),
    TokenFormat("circleci_token", _lead("CCIPAT_") + r"(?P<body>[A-Za-z0-9]{22}_[a-f0-9]{40})" + _R, ("PAT_",)),
    TokenFormat("alibaba_access_key", _lead("LTAI") + r"(?P<body>[A-Za-z0-9]{12,20})" + _R, ("LTAI",), mixed=True),
    TokenFormat("age_secret_key", r"AGE-SECRET-KEY-1(?P<body>[0-9A-Z]{58})" + _R, ("AGE-SECRET-KEY-1",)),
    TokenFormat("stripe_key", _lead("whsec_") + r"(?P<body>[A-Za-z0-9]{32,64})" + _R, ("hsec_",)),
    TokenFormat(
        "discord_webhook",
        r"https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/(?P<body>[A-Za-z0-9_-]{60,68})",
        ("discord",), lowercase_literals=True,
    ),
    TokenFormat(
        # A bot token: the bot's id in base64, a timestamp, an HMAC; looked for where Discord is named.
        "discord_token",
        _L + r"[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.(?P<body>[A-Za-z0-9_-]{27,40})" + _R,
        ("discord",), min_entropy=3.5, lowercase_literals=True,
    ),
)
