"""The detector evaluation: labelled corpora (`eval/corpus/*.jsonl`), the harness that scores each
built-in detector policy on them (`python -m eval`, `make eval`), and the regression floors CI
holds them to (`eval/floors.json`). See eval/README.md.

This package lives beside `capsem_proxy` and is not installed with it.
"""
