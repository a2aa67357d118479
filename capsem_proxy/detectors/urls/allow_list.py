"""The hosts URLs may lead to. An allow-listed domain covers itself and its subdomains
(`example.com` allows `docs.example.com`, never `badexample.com`); a public suffix (`github.io`,
`co.uk`) cannot be allow-listed, since that would allow every site under it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from capsem_proxy.detectors.urls.domains import is_public_suffix
from capsem_proxy.detectors.urls.parse import IpAddress, ParsedUrl, normalised_host

__all__ = ["HostAllowList", "check_host_entries"]

_HOST_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")


class HostAllowList:
    """Domains (with their subdomains), IP addresses and networks that URLs may lead to.

    Entries: `example.com` (itself and every subdomain), `*.example.com` (subdomains only),
    `10.0.0.0/8` or `192.0.2.7`. Built once at start-up; a bad entry raises ValueError naming it.
    """

    def __init__(self, entries: Iterable[str] = (), *, allow_loopback: bool = False) -> None:
        self._domains: set[str] = set()
        self._subdomains_only: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if allow_loopback:
            self._networks += [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        for entry in entries:
            self._add(entry)

    def _add(self, entry: str) -> None:
        value = entry.strip()
        try:
            self._networks.append(ipaddress.ip_network(value.strip("[]"), strict=False))
            return
        except ValueError:
            pass
        wildcard = value.startswith("*.")
        domain, bad_punycode = normalised_host(value[2:] if wildcard else value)
        if bad_punycode or not domain or len(domain) > 253 or not all(map(_HOST_LABEL.match, domain.split("."))):
            raise ValueError(f"'{entry}' is not a domain name, IP address or network")
        if is_public_suffix(domain):
            raise ValueError(
                f"'{entry}' is a public suffix: allowing it would allow every site registered under it; "
                "list the sites instead"
            )
        (self._subdomains_only if wildcard else self._domains).add(domain)

    def __bool__(self) -> bool:
        return bool(self._domains or self._subdomains_only or self._networks)

    def allows_host(self, host: str) -> bool:
        """True when the (normalised) domain name `host` is allow-listed."""
        labels = host.split(".")
        for index in range(len(labels)):
            suffix = ".".join(labels[index:])
            if suffix in self._domains or (index > 0 and suffix in self._subdomains_only):
                return True
        return False

    def allows_ip(self, ip: IpAddress) -> bool:
        """True when `ip` lies in an allow-listed network."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def allows(self, url: ParsedUrl) -> bool:
        """True when `url` leads to an allow-listed host."""
        if url.ip is not None:
            return self.allows_ip(url.ip)
        return self.allows_host(url.host)


def check_host_entries(entries: list[str]) -> list[str]:
    """`entries` unchanged when each is a usable allow-list entry; ValueError naming the first bad one
    (for option validators, so a bad list fails at load)."""
    HostAllowList(entries)
    return entries
