"""The built-in price table and its overrides."""

from capsem_proxy.gateway.prices import PriceTable


def test_dated_names_take_the_longest_known_prefix():
    table = PriceTable()
    assert table.price("gpt-4o-2024-08-06") == (2.50, 10.0)
    assert table.price("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert table.price("claude-sonnet-4-5-20250929") == (3.0, 15.0)
    assert table.price("models/gemini-2.5-flash") == (0.30, 2.50)
    assert table.price("gemini-2.5-flash-lite") == (0.10, 0.40)
    assert table.price("unknown-model") == (0.0, 0.0)


def test_overrides_win_and_take_globs():
    table = PriceTable({"gpt-4o": (1.0, 2.0), "my-local-*": (0.5, 0.5)})
    assert table.price("gpt-4o") == (1.0, 2.0)
    assert table.price("my-local-llama") == (0.5, 0.5)
    assert table.cost("gpt-4o", 1_000_000, 500_000) == 2.0
