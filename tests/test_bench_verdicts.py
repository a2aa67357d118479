"""The benchmark's CPU checks read the median of per-round ratios, not the ratio of medians."""

from __future__ import annotations

from typing import Any

import pytest

from bench.providers import KINDS, verdicts_providers
from bench.report import paired_ratio, round_ratios


def test_round_ratios_pair_rounds_and_skip_missing_values() -> None:
    rounds = [{"v": 120}, {"v": 300}, {"v": None}, {"v": 0}]
    base = [{"v": 100}, {"v": 200}, {"v": 100}, {"v": 100}]
    assert round_ratios(rounds, base, lambda item: item["v"]) == [1.2, 1.5]
    assert round_ratios(rounds, base[:1], lambda item: item["v"]) == [1.2]


def test_paired_ratio_is_the_median_with_its_spread() -> None:
    assert paired_ratio([]) == (None, "")
    assert paired_ratio([1.1]) == (1.1, "")
    assert paired_ratio([1.3, 1.0, 1.1]) == (1.1, "1.00 to 1.30")
    # The ratio of the medians serves only when there are no per-round ratios.
    assert paired_ratio([], 150.0, 100.0) == (1.5, "")
    assert paired_ratio([], 150.0, 0.0) == (None, "")
    assert paired_ratio([1.3, 1.0, 1.1], 150.0, 100.0) == (1.1, "1.00 to 1.30")


def _providers(rounds: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """A `providers` result whose every kind costs, per round, what `rounds` gives for each target."""
    by: dict[str, dict[str, Any]] = {}
    for target, costs in rounds.items():
        per_round = [{name: {"cpu_us": cost} for name in KINDS} for cost in costs]
        merged = {name: {"cpu_us": sorted(costs)[len(costs) // 2]} for name in KINDS}
        by[target] = {**merged, "_rounds": per_round}
    return by


def test_a_drift_between_rounds_does_not_decide_the_check() -> None:
    # Per round the proxy costs 1.2x, 1.5x (a busy moment) and 1.1x the pass-through; the ratio of
    # the medians (150 / 110 = 1.36) would pair the proxy's busy round with a quiet one of the other.
    by = _providers({"baseline": [180, 100, 110], "proxy": [216, 150, 121], "proxy-detectors": [396, 220, 242]})
    verdicts = {v.name: v for v in verdicts_providers(by)}
    check = verdicts["CPU proxy ÷ baseline, OpenAI chat, non-streamed"]
    assert check.value == pytest.approx(1.2)
    assert check.status == "PASS"
    assert check.detail == "median 150 vs 110 µs/req; per round 1.10 to 1.50"
    assert verdicts["CPU proxy-detectors ÷ baseline, OpenAI chat, non-streamed"].value == pytest.approx(2.2)


def test_a_real_regression_still_fails_the_check() -> None:
    by = _providers({"baseline": [100, 100, 100], "proxy": [130, 126, 140], "proxy-detectors": [260, 251, 240]})
    verdicts = {v.name: v for v in verdicts_providers(by)}
    assert verdicts["CPU proxy ÷ baseline, Anthropic messages, stream"].status == "MISS"
    assert verdicts["CPU proxy-detectors ÷ baseline, Anthropic messages, stream"].status == "MISS"


def test_without_rounds_the_ratio_of_medians_is_used() -> None:
    by = _providers({"baseline": [100], "proxy": [110], "proxy-detectors": [300]})
    for target in by.values():
        target["_rounds"] = []
    verdicts = {v.name: v for v in verdicts_providers(by)}
    assert verdicts["CPU proxy ÷ baseline, Gemini streamGenerateContent, SSE"].value == pytest.approx(1.1)
    assert verdicts["CPU proxy-detectors ÷ baseline, Gemini streamGenerateContent, SSE"].status == "MISS"
