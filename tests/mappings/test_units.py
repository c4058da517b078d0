"""Units a data model's fields give away by name and type: money as a whole number is in cents."""

import pytest

from mappings.schema import MINOR_UNITS, guess_unit


@pytest.mark.parametrize(
    ("path", "kind", "paths", "unit"),
    [
        ("total_minor", "integer", [], MINOR_UNITS),
        ("amountCents", "integer", [], MINOR_UNITS),
        ("lines[].price_pence", "integer", [], MINOR_UNITS),
        ("amount", "integer", ["id", "amount", "currency"], MINOR_UNITS),
        ("order.total", "integer", ["order.total", "order.currency"], MINOR_UNITS),
        ("amount", "number", ["amount", "currency"], ""),  # 12.5: the money itself
        ("amount", "integer", ["amount"], ""),  # no currency beside it: a count, maybe
        ("order.total", "integer", ["order.total", "currency"], ""),  # the currency is not beside it
        ("quantity", "integer", ["quantity", "currency"], ""),
        ("total_minor", "string", [], ""),
    ],
)
def test_it_guesses_minor_units_only_from_clear_signs(path, kind, paths, unit):
    assert guess_unit(path, kind, paths) == unit
