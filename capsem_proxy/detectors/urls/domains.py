"""Public-suffix questions about host names: which part one owner registers, and whether a name is
a suffix anyone registers under (`com`, `co.uk`, `github.io`). The public suffix list is the
snapshot shipped inside `tldextract`, read offline.
"""

from __future__ import annotations

from functools import lru_cache

import tldextract

__all__ = ["domain_parts", "has_registrable_domain", "is_public_suffix", "registrable_domain"]

# Offline: no suffix-list download, no cache directory; the snapshot inside the package is used.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


@lru_cache(maxsize=4096)
def domain_parts(host: str) -> tuple[str, str]:
    """(registrable domain, subdomain) of `host`; the domain is the last two labels when the
    suffix is unknown (an intranet name)."""
    extracted = _EXTRACT(host)
    if extracted.domain and extracted.suffix:
        return f"{extracted.domain}.{extracted.suffix}", extracted.subdomain
    labels = host.split(".")
    return ".".join(labels[-2:]), ".".join(labels[:-2])


def registrable_domain(host: str) -> str:
    """The part of `host` one owner registers (`attacker.co.uk` for `a.b.attacker.co.uk`)."""
    return domain_parts(host)[0]


def is_public_suffix(domain: str) -> bool:
    """True when `domain` is a public suffix (`com`, `co.uk`, `github.io`): anyone registers under it."""
    extracted = _EXTRACT(domain)
    return bool(extracted.suffix) and not extracted.domain


def has_registrable_domain(text: str) -> bool:
    """True when `text` (a host, a URL or an e-mail address) ends in a name registered under an
    ICANN public suffix (private suffixes such as `github.io` count as ordinary names here)."""
    return bool(_EXTRACT(text, include_psl_private_domains=False).fqdn)
