import pytest

from mappings.conditions import (
    ConditionError,
    describe_condition,
    evaluate_condition,
    parse_condition_text,
    validate_condition,
)

DEAL = {
    "stage": "won",
    "amount": "1250.50",
    "probability": 90,
    "currency": "EUR",
    "vip": True,
    "tags": ["new", "web"],
    "customer": {"email": "ann@example.com"},
    "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": 30}],
}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (None, True),
        ({}, True),
        ({"path": "stage", "op": "eq", "value": "won"}, True),
        ({"path": "stage", "op": "ne", "value": "won"}, False),
        ({"path": "amount", "op": "gt", "value": 1000}, True),
        ({"path": "amount", "op": "lte", "value": "999"}, False),
        ({"path": "probability", "op": "eq", "value": "90.0"}, True),
        ({"path": "stage", "op": "lt", "value": "x"}, True),  # text order when either side is not a number
        ({"path": "currency", "op": "in", "value": ["EUR", "USD"]}, True),
        ({"path": "currency", "op": "not_in", "value": ["EUR", "USD"]}, False),
        ({"path": "vip", "op": "eq", "value": "true"}, True),
        ({"path": "customer.email", "op": "contains", "value": "@example."}, True),
        ({"path": "tags", "op": "contains", "value": "web"}, True),
        ({"path": "customer.email", "op": "exists"}, True),
        ({"path": "customer.phone", "op": "exists"}, False),
        ({"path": "customer.phone", "op": "not_exists"}, True),
        ({"path": "customer.phone", "op": "eq", "value": "x"}, False),
        ({"path": "customer.phone", "op": "gt", "value": 1}, False),
    ],
)
def test_it_evaluates_comparisons(cond, expected):
    assert evaluate_condition(cond, DEAL) is expected


def test_it_matches_list_paths_when_any_element_matches():
    assert evaluate_condition({"path": "lines[].quantity", "op": "gt", "value": 10}, DEAL)
    assert not evaluate_condition({"path": "lines[].quantity", "op": "gt", "value": 100}, DEAL)
    assert evaluate_condition({"path": "lines[].sku", "op": "eq", "value": "B-2"}, DEAL)


def test_it_negates_list_paths_as_no_element_matches():
    assert not evaluate_condition({"path": "lines[].sku", "op": "ne", "value": "B-2"}, DEAL)
    assert evaluate_condition({"path": "lines[].sku", "op": "not_in", "value": ["C-3"]}, DEAL)
    assert evaluate_condition({"path": "missing[].sku", "op": "not_exists"}, DEAL)


def test_it_combines_conditions():
    cond = {
        "all": [
            {"path": "stage", "op": "eq", "value": "won"},
            {
                "any": [
                    {"path": "currency", "op": "eq", "value": "USD"},
                    {"path": "vip", "op": "eq", "value": True},
                ]
            },
            {"not": {"path": "amount", "op": "lt", "value": 100}},
        ]
    }
    assert evaluate_condition(cond, DEAL)
    assert not evaluate_condition(cond, {**DEAL, "vip": False})


def test_it_refuses_to_evaluate_an_unknown_operator():
    with pytest.raises(ConditionError, match='unknown comparison "equals"'):
        evaluate_condition({"path": "stage", "op": "equals", "value": "won"}, DEAL)


def test_it_accepts_valid_conditions():
    assert validate_condition(None) == []
    assert (
        validate_condition(
            {"all": [{"path": "lines[].sku", "op": "in", "value": ["A"]}, {"path": "x", "op": "exists"}]}
        )
        == []
    )


@pytest.mark.parametrize(
    ("cond", "problems"),
    [
        ("stage = won", ["a condition must be an object"]),
        ({"path": "stage", "op": "equals", "value": 1}, [
            'unknown comparison "equals" (use one of: eq, ne, in, not_in, gt, gte, lt, lte, contains, exists, not_exists)'
        ]),
        ({"path": "stage", "op": "eq"}, ['"is" needs a value to compare with']),
        ({"path": "currency", "op": "in", "value": "EUR"}, ['"is one of" needs a list of values']),
        ({"path": "a..b", "op": "exists"}, ['"a..b" is not a valid path: it has an empty part']),
        ({"all": []}, ['"all" needs a non-empty list of conditions']),
        ({"any": [{"path": "x", "op": "eq", "value": 1}, {"not": {"op": "gt", "value": 3}}]}, ["any item 2 › not: choose a field"]),
        ({"all": [], "path": "x"}, ['a condition with "all" cannot have other settings']),
    ],
)  # fmt: skip
def test_it_explains_structural_problems(cond, problems):
    assert validate_condition(cond) == problems


def test_it_describes_conditions_in_plain_words():
    cond = {
        "all": [{"path": "stage", "op": "eq", "value": "won"}, {"path": "amount", "op": "gt", "value": 100}]
    }
    assert describe_condition(cond) == 'stage is "won" and amount is greater than 100'
    nested = {
        "any": [
            {"path": "customer.email", "op": "exists"},
            {
                "not": {
                    "all": [
                        {"path": "a", "op": "eq", "value": 1},
                        {"path": "b", "op": "in", "value": ["x", 2]},
                    ]
                }
            },
        ]
    }
    assert describe_condition(nested) == 'customer.email exists or not (a is 1 and b is one of "x", 2)'
    assert describe_condition(None) == "always"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stage = won", {"path": "stage", "op": "eq", "value": "won"}),
        ("amount > 100", {"path": "amount", "op": "gt", "value": 100}),
        ("amount >= 99.5", {"path": "amount", "op": "gte", "value": 99.5}),
        ("stage is not closed won", {"path": "stage", "op": "ne", "value": "closed won"}),
        ("customer.email exists", {"path": "customer.email", "op": "exists"}),
        ("customer.phone not exists", {"path": "customer.phone", "op": "not_exists"}),
        ("currency not in EUR, 'US D'", {"path": "currency", "op": "not_in", "value": ["EUR", "US D"]}),
        ('note contains "a and b"', {"path": "note", "op": "contains", "value": "a and b"}),
        ("vip == true", {"path": "vip", "op": "eq", "value": True}),
        ("", {}),
        (
            "amount > 100 and currency in EUR,USD",
            {
                "all": [
                    {"path": "amount", "op": "gt", "value": 100},
                    {"path": "currency", "op": "in", "value": ["EUR", "USD"]},
                ]
            },
        ),
        (
            "stage = won AND (currency = EUR OR lines[].quantity > 10)",
            {
                "all": [
                    {"path": "stage", "op": "eq", "value": "won"},
                    {
                        "any": [
                            {"path": "currency", "op": "eq", "value": "EUR"},
                            {"path": "lines[].quantity", "op": "gt", "value": 10},
                        ]
                    },
                ]
            },
        ),
        ("not stage = lost", {"not": {"path": "stage", "op": "eq", "value": "lost"}}),
    ],
)
def test_it_reads_the_text_syntax(text, expected):
    cond = parse_condition_text(text)
    assert cond == expected
    assert validate_condition(cond) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = 1 and b = 2 or c = 3", 'mixing "and" with "or" is ambiguous; add parentheses, e.g. "a = 1 and (b = 2 or c = 3)"'),
        ("stage equals won", 'after "stage" expected =, !=, >, >=, <, <=, in, not in, contains, exists or not exists, but found "equals"'),
        ("stage =", '"stage is" needs a value to compare with'),
        ("stage = 'won", "a quote (') is never closed"),
        ("(stage = won", 'a "(" is never closed'),
        ("stage = won and", 'expected a comparison such as "stage = won" at the end'),
        ("stage = won amount > 1", 'unexpected ">"; join conditions with "and" or "or"'),
        ("a..b = 1", '"a..b" is not a valid path: it has an empty part'),
    ],
)  # fmt: skip
def test_it_explains_text_it_cannot_read(text, message):
    with pytest.raises(ConditionError) as caught:
        parse_condition_text(text)
    assert str(caught.value) == message


def test_it_evaluates_what_it_parsed():
    cond = parse_condition_text("stage = won and amount > 1000 and currency in EUR,USD")
    assert evaluate_condition(cond, DEAL)
    assert not evaluate_condition(cond, {**DEAL, "currency": "GBP"})
