"""A flow filter checked against its source's data model: unknown fields and impossible comparisons."""

import pytest

from mappings.conditions import check_condition_fields, condition_units, parse_condition_text
from mappings.schema import FieldSpec

DEAL = [
    FieldSpec("id", "string"),
    FieldSpec("stage", "string"),
    FieldSpec("amount", "integer"),
    FieldSpec("paid", "boolean"),
    FieldSpec("closed_on", "date"),
    FieldSpec("customer", "object"),
    FieldSpec("customer.email", "string"),
    FieldSpec("lines", "array"),
    FieldSpec("lines[].sku", "string"),
    FieldSpec("extra", "object"),
]


def problems(text: str, fields=DEAL) -> list[tuple[str, str, bool]]:
    return [
        (p.path, p.message, p.unknown_field)
        for p in check_condition_fields(parse_condition_text(text), fields)
    ]


def test_a_misspelt_field_is_unknown_with_the_closest_name():
    assert problems("custmer.email exists") == [
        (
            "custmer.email",
            'There is no field "custmer.email", so no record would pass. Did you mean customer.email?',
            True,
        )
    ]


def test_a_last_part_alone_points_at_the_nested_field():
    [(_, message, unknown)] = problems("email contains @example.com")
    assert unknown and message.endswith("Did you mean customer.email?")


def test_an_unknown_field_with_nothing_close_says_to_check_the_list():
    [(_, message, _)] = problems("zzz = 1")
    assert (
        message
        == 'There is no field "zzz", so no record would pass. Check the spelling against the fields listed below.'
    )


@pytest.mark.parametrize(
    "text",
    [
        "stage = won and amount > 100",
        "paid = true and closed_on >= 2026-01-31",
        "customer.email exists",
        "lines[].sku = A1 or lines[0].sku = B2",
        "extra.anything = x",  # inside an object the model keeps whole
        "amount in 1, 2, 3",
        'stage > "m"',
        "not (amount < 0)",
    ],
)
def test_sound_filters_have_no_problems(text):
    assert problems(text) == []


def test_a_model_without_fields_checks_nothing():
    assert problems("anything = 1", fields=[]) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('amount > "abc"', 'amount is a whole number, so it is never greater than "abc". Compare it like this: amount > 100.'),
        ("amount = lots", 'amount is a whole number, so it is never equal to "lots". Compare it like this: amount > 100.'),
        ("amount != lots", 'amount is a whole number, so it is always different from "lots" and every record passes. '
                           "Compare it like this: amount > 100."),
        ("paid = yes", 'paid is true or false, so it is never equal to "yes". Compare it like this: paid = true.'),
        ("closed_on > yesterday", 'closed_on is a date (YYYY-MM-DD), so it is never greater than "yesterday". '
                                  "Compare it like this: closed_on >= 2026-01-31."),
        ("email > 5", None),
        ("customer.email > 5", 'customer.email is text, so it is compared with 5 letter by letter, not as a number '
                               '("9" comes after "10"). Did you mean a number field?'),
        ("customer > 1", "customer is an object: it has no order, so it is never greater than anything."),
        ("amount contains 5", 'amount is a whole number: "contains" looks inside text and lists. Use = instead.'),
    ],
)  # fmt: skip
def test_impossible_comparisons_are_explained_and_are_not_unknown_fields(text, message):
    found = problems(text)
    if message is None:  # "email" is unknown first: its spelling is the problem to fix
        assert found[0][2] is True
        return
    assert found == [(text.split()[0], message, False)]


def test_it_says_what_compared_values_count_where_the_model_knows():
    fields = [FieldSpec("amount", "integer", unit="in cents (minor units)"), FieldSpec("paid", "boolean")]
    cond = parse_condition_text("amount > 10000 and amount < 50000 and paid = true")
    assert condition_units(cond, fields) == ["amount is in cents (minor units)"]
    assert condition_units(parse_condition_text("amount exists"), fields) == []
