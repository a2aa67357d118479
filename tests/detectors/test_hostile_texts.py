"""Texts built to make a detector's patterns backtrack are read in time linear in their length.

Each of these took minutes or more on 200 kB before its pattern was fixed (a quadratic or
exponential regex); the bounds leave room for a busy machine.
"""

from __future__ import annotations

import time

import pytest

from capsem_proxy.detectors.injection import InjectionDetector
from capsem_proxy.detectors.pii import PIIDetector
from capsem_proxy.detectors.secrets import SecretsDetector
from capsem_proxy.detectors.urls import HostAllowList, UrlDetector

SIZE = 200_000

HOSTILE = {
    # PEM bodies: every "\n \t" could be split three ways between two line breaks (exponential).
    "pem_breaks": (SecretsDetector, ("-----BEGIN PRIVATE KEY-----" + "\n \t" * 30) * (SIZE // 117)),
    # The lazy search for an end marker read 16 kB after every begin marker.
    "pem_markers": (SecretsDetector, "-----BEGIN RSA PRIVATE KEY-----" * (SIZE // 31)),
    # E-mail candidates re-read a long run of local-part characters from every position in it.
    "email_run": (PIIDetector, "a" * SIZE + " bob@acme.io"),
    # Markdown image references and labels read on to the end of a text full of brackets.
    "image_brackets": (lambda: UrlDetector(HostAllowList([])), "![" * (SIZE // 2)),
    "label_brackets": (lambda: UrlDetector(HostAllowList([])), ("]" * 30 + "](https://x.io/a)") * (SIZE // 47)),
    # URLs whose query, path or host holds long runs a blob check could re-read from every position.
    "url_runs": (lambda: UrlDetector(HostAllowList([])),
                 ("https://t.io/" + "ab/" * 300 + "?q=" + "a" * 200 + "A " + "https://t.io/?q=" + "the+" * 60 + " ")
                 * (SIZE // 1900)),
    # Role markers: runs of newlines before a missing "system:" (quadratic with Python's re).
    "role_markers": (InjectionDetector, "\n" * SIZE),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_text_is_read_in_linear_time(name):
    make, text = HOSTILE[name]
    detector = make()
    started = time.perf_counter()
    detector.scan(text)
    assert time.perf_counter() - started < 5, name


def test_the_fixed_patterns_still_find_what_they_should():
    assert [finding.text for finding in PIIDetector().scan("a" * 5000 + " mail bob@acme.io")] == ["bob@acme.io"]
    body = "\n".join("ABCDEFGHIJKLMNOPabcdefghijklmnop" * 2 for _ in range(4))
    indented = "-----BEGIN PRIVATE KEY-----\n  " + body.replace("\n", "\n  ") + "\n"
    assert [finding.kind for finding in SecretsDetector().scan(indented)] == ["private_key"]
    urls = UrlDetector(HostAllowList([]))
    kinds = {finding.kind for finding in urls.scan("see ![a [nested] label](https://evil.example.net/x.png)")}
    assert "markdown_image" in kinds
    reference = "![chart][c]\n\n[c]: https://evil.example.net/c.png"
    assert "markdown_image" in {finding.kind for finding in urls.scan(reference)}
