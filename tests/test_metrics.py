"""Prometheus metrics: what a finished request and its decisions count, bounded labels, the audit
gauges read at scrape time, the cost of an update, and the multiprocess set-up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.metrics import MULTIPROCESS_ENV, OTHER, Metrics, open_metrics, prepare_multiprocess
from capsem_proxy.records import RequestRecord

REPO_ROOT = Path(__file__).resolve().parents[1]


def _samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith(b"text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return _samples(metrics).get((name, frozenset(labels.items())))


def _record(**fields) -> RequestRecord:
    values = {
        "provider": "openai", "operation": "chat", "route": "/v1/chat/completions", "model": "gpt-4o-mini",
        "status": 200, "latency_ms": 12.0, "upstream_ms": 8.0, "ttfb_ms": 10.0, "input_tokens": 20,
        "output_tokens": 30,
    }
    values.update(fields)
    return RequestRecord("req-1", time.time(), **values)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(Settings())


def test_metrics_off_is_none() -> None:
    assert open_metrics(Settings(metrics={"enabled": False})) is None
    assert isinstance(open_metrics(Settings()), Metrics)


def test_finished_requests_count_by_provider_model_route_and_status(metrics: Metrics) -> None:
    metrics.observe_request(_record())
    metrics.observe_request(_record())
    metrics.observe_request(_record(status=403, upstream_ms=None, input_tokens=None, output_tokens=None))
    labels = {"provider": "openai", "model": "gpt-4o-mini", "route": "/v1/chat/completions"}
    assert _value(metrics, "capsem_proxy_requests_total", **labels, status="200") == 2
    assert _value(metrics, "capsem_proxy_requests_total", **labels, status="403") == 1
    tokens = {"provider": "openai", "model": "gpt-4o-mini"}
    assert _value(metrics, "capsem_proxy_tokens_total", **tokens, direction="input") == 40
    assert _value(metrics, "capsem_proxy_tokens_total", **tokens, direction="output") == 60


def test_latencies_land_in_histograms_in_seconds(metrics: Metrics) -> None:
    metrics.observe_request(_record(latency_ms=120.0, ttfb_ms=30.0, upstream_ms=20.0))
    metrics.observe_request(_record(latency_ms=80.0, ttfb_ms=None, upstream_ms=None))
    route = {"provider": "openai", "route": "/v1/chat/completions"}
    assert _value(metrics, "capsem_proxy_request_duration_seconds_count", **route) == 2
    assert _value(metrics, "capsem_proxy_request_duration_seconds_sum", **route) == pytest.approx(0.2)
    assert _value(metrics, "capsem_proxy_request_duration_seconds_bucket", **route, le="0.1") == 1
    assert _value(metrics, "capsem_proxy_time_to_first_byte_seconds_count", **route) == 1
    assert _value(metrics, "capsem_proxy_upstream_duration_seconds_sum", provider="openai") == pytest.approx(0.02)


def test_decisions_count_by_policy_hook_and_verdict_with_policy_latency(metrics: Metrics) -> None:
    metrics.observe_decisions([
        Decision(Verdict.ALLOW, "DebugPolicy", "on_model_call", latency_ms=0.2),
        Decision(Verdict.BLOCK, "DebugPolicy", "on_model_call", latency_ms=0.4),
        Decision(Verdict.ALLOW, "pii", "on_model_response", latency_ms=3.0),
    ])
    metrics.observe_decisions([Decision(Verdict.ALLOW, "DebugPolicy", "on_model_call", latency_ms=0.1)])
    counted = {"policy": "DebugPolicy", "hook": "on_model_call"}
    assert _value(metrics, "capsem_proxy_decisions_total", **counted, verdict="ALLOW") == 2
    assert _value(metrics, "capsem_proxy_decisions_total", **counted, verdict="BLOCK") == 1
    assert _value(metrics, "capsem_proxy_decisions_total", policy="pii", hook="on_model_response", verdict="ALLOW") == 1
    assert _value(metrics, "capsem_proxy_policy_duration_seconds_count", **counted) == 3
    assert _value(metrics, "capsem_proxy_policy_duration_seconds_sum", **counted) == pytest.approx(0.0007)
    assert _value(metrics, "capsem_proxy_policy_duration_seconds_bucket", **counted, le="+Inf") == 3


def test_model_names_are_bounded_cut_and_never_a_key(metrics: Metrics) -> None:
    for index in range(60):
        metrics.observe_request(_record(model=f"model-{index}"))
    metrics.observe_request(_record(model="m" * 300))
    metrics.observe_request(_record(model="sk-proj-" + "a1B2" * 10))
    models = {
        dict(labels)["model"] for name, labels in _samples(metrics) if name == "capsem_proxy_requests_total"
    }
    assert "model-0" in models and "model-49" in models
    assert "model-50" not in models and OTHER in models
    assert len(models) == 51
    assert all(len(model) <= 64 for model in models)
    assert _value(metrics, "capsem_proxy_requests_total", provider="openai", model=OTHER,
                  route="/v1/chat/completions", status="200") == 12


def test_a_key_shaped_model_is_other_even_with_room_left(metrics: Metrics) -> None:
    metrics.observe_request(_record(model="AIzaSyA1234567890abcdefghijklmnopqrstu"))
    body = metrics.render()[0].decode()
    assert "AIza" not in body
    assert 'model="other"' in body


def test_active_streams_gauge(metrics: Metrics) -> None:
    metrics.stream_started()
    metrics.stream_started()
    metrics.stream_ended()
    assert _value(metrics, "capsem_proxy_active_streams") == 1


class _Sink:
    def __init__(self) -> None:
        self.depth = 0
        self.dropped = 0

    def queue_depth(self) -> int:
        return self.depth


def test_audit_queue_depth_and_drops_are_read_at_scrape_time(metrics: Metrics) -> None:
    sink = _Sink()
    metrics.watch_audit(sink)
    assert _value(metrics, "capsem_proxy_audit_queue_depth") == 0
    sink.depth, sink.dropped = 42, 7
    assert _value(metrics, "capsem_proxy_audit_queue_depth") == 42
    assert _value(metrics, "capsem_proxy_audit_dropped_rows_total") == 7
    sink.depth, sink.dropped = 0, 10
    samples = _samples(metrics)
    assert samples[("capsem_proxy_audit_queue_depth", frozenset())] == 0
    assert samples[("capsem_proxy_audit_dropped_rows_total", frozenset())] == 10


def test_a_failing_audit_sink_does_not_break_the_scrape(metrics: Metrics) -> None:
    class Broken:
        dropped = 0

        def queue_depth(self) -> int:
            raise RuntimeError("store gone")

    metrics.watch_audit(Broken())
    metrics.observe_request(_record())
    assert _value(metrics, "capsem_proxy_requests_total", provider="openai", model="gpt-4o-mini",
                  route="/v1/chat/completions", status="200") == 1


def test_refused_requests_are_counted(metrics: Metrics) -> None:
    metrics.audit_refused()
    metrics.audit_refused()
    assert _value(metrics, "capsem_proxy_audit_refused_requests_total") == 2


def test_metrics_instances_do_not_share_numbers() -> None:
    first, second = Metrics(Settings()), Metrics(Settings())
    first.observe_request(_record())
    assert _value(second, "capsem_proxy_requests_total", provider="openai", model="gpt-4o-mini",
                  route="/v1/chat/completions", status="200") is None


def test_lock_free_series_expose_what_prometheus_client_would(metrics: Metrics) -> None:
    """The request-path series are plain numbers in one process: same samples as the library's own."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    reference = CollectorRegistry(auto_describe=False)
    requests = Counter("capsem_proxy_requests", "Proxied requests by provider, model, route and HTTP status.",
                       ("provider", "model", "route", "status"), registry=reference)
    seconds = Histogram("capsem_proxy_request_duration_seconds",
                        "Time from the request to the last byte of the answer.", ("provider", "route"),
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                                 300.0), registry=reference)
    for latency_ms, status in ((5.0, 200), (0.5, 200), (10.0, 403), (400_000.0, 200), (25.0, 200)):
        metrics.observe_request(_record(latency_ms=latency_ms, status=status))
        requests.labels("openai", "gpt-4o-mini", "/v1/chat/completions", str(status)).inc()
        seconds.labels("openai", "/v1/chat/completions").observe(latency_ms / 1000.0)
    ours = metrics.render()[0].decode()
    for line in generate_latest(reference).decode().splitlines():
        if not line.startswith("#") and "_created" not in line:
            assert line in ours


def test_prepare_multiprocess_only_with_several_workers(tmp_path: Path) -> None:
    settings = Settings(server={"data_dir": tmp_path})
    assert prepare_multiprocess(settings, 1) == {}
    assert prepare_multiprocess(Settings(server={"data_dir": tmp_path}, metrics={"enabled": False}), 4) == {}
    env = prepare_multiprocess(settings, 2)
    assert env == {MULTIPROCESS_ENV: str((tmp_path / "metrics").resolve())}
    assert (tmp_path / "metrics").is_dir()


def test_prepare_multiprocess_wipes_files_of_an_earlier_run(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    (directory / "counter_1234.db").write_bytes(b"stale")
    (directory / "notes.txt").write_text("kept")
    settings = Settings(server={"workers": 3}, metrics={"multiprocess_dir": directory})
    assert prepare_multiprocess(settings) == {MULTIPROCESS_ENV: str(directory.resolve())}
    assert sorted(path.name for path in directory.iterdir()) == ["notes.txt"]


_WORKER = """
import sys, time
from capsem_proxy.config import Settings
from capsem_proxy.metrics import Metrics
from capsem_proxy.records import RequestRecord
metrics = Metrics(Settings())
for _ in range(int(sys.argv[1])):
    metrics.observe_request(RequestRecord("r", time.time(), provider="gemini", route="/r", model="m", status=200,
                                          output_tokens=5))
metrics.stream_started()
sys.stdout.write(metrics.render()[0].decode())
"""


def test_multiprocess_mode_sums_counters_over_processes(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROCESS_ENV: str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    outputs = [
        subprocess.run([sys.executable, "-c", _WORKER, str(count)], env=env, capture_output=True, text=True,
                       check=True, cwd=REPO_ROOT).stdout
        for count in (3, 4)
    ]
    last = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(outputs[-1])
        for sample in family.samples
    }
    labels = frozenset({"provider": "gemini", "model": "m", "route": "/r", "status": "200"}.items())
    assert last[("capsem_proxy_requests_total", labels)] == 7
    tokens = frozenset({"provider": "gemini", "model": "m", "direction": "output"}.items())
    assert last[("capsem_proxy_tokens_total", tokens)] == 35
    # The first process has exited: its live gauge no longer counts.
    assert last[("capsem_proxy_active_streams", frozenset())] == 1
