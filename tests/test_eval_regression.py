"""The detector evaluation as a regression gate: every detector keeps the scores in eval/floors.json,
eval/SOURCES.md matches the detectors' notes, and the harness itself scores correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main as eval_main
from eval.corpus import load_corpus
from eval.floors import LATENCY_SLACK_MS, check_floors, load_floors, make_floors
from eval.harness import run_eval, typical_prompt
from eval.sources import DEFAULT_SOURCES_FILE, merged_sources

# --- the real corpora against the committed floors -------------------------------------------


@pytest.fixture(scope="module")
def report():
    return run_eval(repetitions=100)


def test_every_detector_meets_its_floors(report):
    # Quality only: latency ceilings are checked by `python -m eval --check` on a quiet machine.
    failures = check_floors(report, load_floors(), latency=False)
    assert failures == [], "detector regressions:\n" + "\n".join(failures)


def test_the_whole_evaluation_takes_well_under_thirty_seconds_of_cpu(report):
    # CPU, not wall-clock time: a machine busy with other work must not fail this.
    assert report["cpu_seconds"] < 30


def test_sources_md_is_generated_from_the_detector_notes():
    assert DEFAULT_SOURCES_FILE.read_text(encoding="utf-8") == merged_sources(), (
        "eval/SOURCES.md is stale: run `python -m eval --write-sources`"
    )


# --- the harness on a small corpus whose scores are known -------------------------------------

DETECTORS_YAML = """
debug:
  class: capsem.policies.debug_policy.DebugPolicy
  options: {}
  hooks: [on_model_call, on_tool_call]
  default_set: true
broken:
  class: no_such_module.Policy
  options: {}
"""


def _item(number, *, label, category, text=None, hook="on_model_call", split="test", kinds=(), **fields):
    item = {
        "id": f"debug-{number:03d}", "detector": "debug", "split": split, "hook": hook, "label": label,
        "kinds": list(kinds), "category": category, "source": "generated:tests",
    }
    if text is not None:
        item["text"] = text
    item.update(fields)
    return item


ITEMS = [
    _item(1, label=True, category="positive", kinds=["keyword"], text="please capsem_block this"),
    _item(2, label=True, category="positive", kinds=["keyword"], text="CAPSEM_BLOCK in capitals"),
    _item(3, label=True, category="positive", kinds=["keyword"], text="capsem block, spaced: missed"),
    _item(
        4, label=True, category="positive", kinds=["tool_name"], hook="on_tool_call", args={},
        tool={"name": "run_capsem_block", "description": "d", "parameters": {}},
    ),
    _item(5, label=False, category="benign", text="an ordinary question about the weather in Lyon"),
    _item(6, label=False, category="benign", text="benign, yet it says capsem_block"),
    _item(7, label=False, category="benign_lookalike", text="the word capsem alone"),
    _item(8, label=True, category="positive", kinds=["keyword"], split="dev", text="dev capsem_block"),
    _item(
        9, label=False, category="benign", hook="on_tool_response", response={"rows": 3},
        tool={"name": "query", "description": "runs a query", "parameters": {}},
    ),
]


@pytest.fixture
def small_eval(tmp_path):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    lines = [json.dumps(item) for item in ITEMS]
    lines.insert(2, "{not json")
    lines.append(json.dumps({**ITEMS[0], "id": "debug-100", "detector": "other"}))
    lines.append(json.dumps({**ITEMS[0], "id": "debug-101", "category": "benign"}))
    lines.append(json.dumps({**ITEMS[0], "id": "debug-001"}))
    (corpus_dir / "debug.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    detectors = tmp_path / "detectors.yaml"
    detectors.write_text(DETECTORS_YAML, encoding="utf-8")
    return corpus_dir, detectors


def test_malformed_lines_are_reported_with_their_line_and_left_out(small_eval):
    corpus_dir, _ = small_eval
    corpus = load_corpus(corpus_dir / "debug.jsonl")
    assert [item.id for item in corpus.items] == [item["id"] for item in ITEMS]
    path = corpus_dir / "debug.jsonl"
    assert corpus.errors[0].startswith(f"{path}:3: invalid JSON")
    assert corpus.errors[1:] == [
        f"{path}:11: detector 'other' in the corpus of 'debug'",
        f"{path}:12: label true does not match category 'benign'",
        f"{path}:13: duplicate id 'debug-001'",
    ]


def test_scores_count_flagged_items_per_split_category_and_kind(small_eval):
    corpus_dir, detectors = small_eval
    result = run_eval(corpus_dir, detectors, repetitions=20)
    debug = result["detectors"]["debug"]
    assert debug["status"] == "ok" and debug["corpus_error_count"] == 4
    test = debug["splits"]["test"]
    assert (test["tp"], test["fn"], test["fp"], test["tn"]) == (3, 1, 1, 3)
    assert (test["precision"], test["recall"], test["f1"]) == (0.75, 0.75, 0.75)
    assert (test["benign_items"], test["benign_fpr"]) == (3, 0.3333)
    assert (test["lookalike_items"], test["lookalike_fpr"]) == (1, 0)
    assert test["kinds"]["keyword"] == {"items": 3, "recall": 0.6667, "kind_found": 0.0}
    assert test["kinds"]["tool_name"]["recall"] == 1.0
    assert test["hooks"]["on_tool_call"]["recall"] == 1.0
    # Scores per source package or generator ("generated:tests" -> "generated").
    assert test["sources"] == {"generated": {"items": 8, "positives": 4, "negatives": 4, "recall": 0.75, "fpr": 0.25}}
    # The policy is configured for two hooks only: the tool result was never handed to it.
    assert test["not_consulted"] == 1
    assert test["latency_p50_ms"] > 0
    assert (debug["splits"]["dev"]["tp"], debug["splits"]["dev"]["items"]) == (1, 1)
    assert debug["request_latency"]["repetitions"] == 20
    assert result["default_set"]["detectors"] == ["debug"]
    assert result["default_set"]["request_latency"]["p50_ms"] > 0


def test_a_detector_that_cannot_be_built_is_skipped_and_fails_its_floors(small_eval):
    corpus_dir, detectors = small_eval
    result = run_eval(corpus_dir, detectors, repetitions=5)
    broken = result["detectors"]["broken"]
    assert broken["status"] == "skipped"
    assert "cannot import module 'no_such_module'" in broken["reason"]
    failures = check_floors(result, {"detectors": {"broken": {"min_recall": 0.5}}})
    assert len(failures) == 1 and failures[0].startswith("broken: not evaluated (policy cannot be built")


def test_floors_sit_a_margin_under_the_scores_and_catch_a_regression(small_eval):
    corpus_dir, detectors = small_eval
    result = run_eval(corpus_dir, detectors, only={"debug"}, repetitions=20)
    floors = make_floors(result, margin=0.02)
    limits = floors["detectors"]["debug"]
    assert (limits["min_precision"], limits["min_recall"], limits["min_f1"]) == (0.73, 0.73, 0.73)
    assert (limits["max_benign_fpr"], limits["max_lookalike_fpr"]) == (0.354, 0.04)
    assert limits["max_p50_ms"] >= result["detectors"]["debug"]["request_latency"]["p50_ms"] + LATENCY_SLACK_MS
    # Corpus errors alone break a floor: a detector is only trusted on a clean corpus.
    failures = check_floors(result, floors)
    assert len(failures) == 1
    assert failures[0].startswith(f"debug: 4 malformed corpus line(s), first: {corpus_dir / 'debug.jsonl'}:3: ")
    stricter = {"detectors": {"debug": {**limits, "min_recall": 0.9, "max_benign_fpr": 0.1}}}
    failures = check_floors(result, stricter)
    assert "debug: recall 0.7500 < floor 0.9000" in failures
    assert "debug: benign_fpr 0.3333 > ceiling 0.1000" in failures
    slower = {"detectors": {"debug": {**limits, "max_p50_ms": 0.0}}}
    assert any(line.startswith("debug: p50 latency") for line in check_floors(result, slower))
    assert not any(line.startswith("debug: p50 latency") for line in check_floors(result, slower, latency=False))


def test_the_command_line_writes_the_report_and_exits_1_on_a_regression(small_eval, tmp_path, capsys):
    corpus_dir, detectors = small_eval
    floors = tmp_path / "floors.json"
    output = tmp_path / "reports" / "latest.json"
    common = ["--corpus-dir", str(corpus_dir), "--detectors", str(detectors), "--floors", str(floors),
              "--output", str(output), "--only", "debug", "--repetitions", "10"]
    assert eval_main([*common, "--write-floors"]) == 0
    written = json.loads(floors.read_text())
    assert set(written["detectors"]) == {"debug"}
    assert json.loads(output.read_text())["detectors"]["debug"]["status"] == "ok"
    printed = capsys.readouterr().out
    assert "debug" in printed and "typical request" in printed
    written["detectors"]["debug"]["min_recall"] = 0.99
    floors.write_text(json.dumps(written))
    assert eval_main([*common, "--check", "--quiet"]) == 1
    assert "REGRESSION debug: recall 0.7500 < floor 0.9900" in capsys.readouterr().err


def test_the_typical_prompt_is_about_two_kilobytes_of_benign_prompts(small_eval):
    corpus_dir, _ = small_eval
    corpus = load_corpus(corpus_dir / "debug.jsonl")
    prompt = typical_prompt({"debug": corpus}, size=40)
    assert prompt == "an ordinary question about the weather"
    assert typical_prompt({"debug": corpus}, size=4096).endswith("says capsem_block")


def test_the_eval_package_is_not_installed_with_the_proxy():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert 'include = ["capsem_proxy*"]' in pyproject


# --- the scores the docs print ---------------------------------------------------------------


def test_the_table_in_docs_detectors_md_is_what_the_evaluation_measures(report):
    from eval.docs_table import DEFAULT_DOC, documented_table, render_table

    documented = documented_table()
    assert documented is not None, f"{DEFAULT_DOC} lost its eval-table markers"
    assert documented == render_table(report), (
        f"the precision/recall table of {DEFAULT_DOC} is stale: run `make eval` (python -m eval --write-docs)"
    )


def test_write_docs_replaces_only_the_table(tmp_path, report):
    from eval.docs_table import BEGIN, END, documented_table, render_table, write_table

    doc = tmp_path / "detectors.md"
    doc.write_text(f"# Detectors\n\nbefore\n\n{BEGIN}\n| old | table |\n{END}\n\nafter\n", encoding="utf-8")
    assert write_table(report, doc) is True
    assert write_table(report, doc) is False
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Detectors\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert documented_table(doc) == render_table(report) and "| old |" not in text


def test_a_source_is_named_by_its_package_or_generator():
    from eval.metrics import source_package

    assert source_package("agentdojo==0.1.35:agentdojo/data/suites/slack") == "agentdojo"
    assert source_package("generated:injection") == "generated"
    assert source_package("mimesis") == "mimesis"
