import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.transforms import (
    OPTION_TYPES,
    TRANSFORMS,
    TransformError,
    catalogue,
    run_transform,
    validate_options,
)

REQUIRED_NAMES = {
    "cast", "parse_datetime", "format_datetime", "format_date", "lookup", "template", "concat", "split",
    "join", "arithmetic", "default", "money_to_minor", "minor_to_money", "trim", "upper", "lower", "title",
    "replace", "first", "count",
}  # fmt: skip


# --- the registry ----------------------------------------------------------------------------------


def test_it_registers_every_transform_the_mapper_offers():
    assert set(TRANSFORMS) == REQUIRED_NAMES


def test_it_describes_every_transform_for_the_ui_as_json():
    entries = catalogue()
    json.dumps(entries)  # the UI receives it as JSON
    for entry in entries:
        assert entry["label"] and entry["description"]
        for option in entry["options"]:
            assert option["type"] in OPTION_TYPES
            assert option["label"]
            if option["type"] == "choice":
                assert option["choices"]
    cast_entry = next(entry for entry in entries if entry["name"] == "cast")
    assert cast_entry["options"][0]["choices"] == ["string", "integer", "number", "boolean", "decimal"]


def test_it_flags_list_transforms_and_record_transforms():
    assert {name for name, found in TRANSFORMS.items() if found.whole_list} == {"join", "first", "count"}
    assert TRANSFORMS["template"].needs_record and TRANSFORMS["concat"].needs_record


@pytest.mark.parametrize(
    ("name", "options", "problem"),
    [
        ("lowr", {}, 'unknown transform "lowr" (did you mean "lower"?)'),
        ("cast", {}, '"Convert to" is required'),
        (
            "cast",
            {"to": "int"},
            '"Convert to" must be one of: string, integer, number, boolean, decimal (not "int")',
        ),
        ("split", {"index": "1"}, '"Keep part number" must be a whole number'),
        ("lookup", {"table": ["a"]}, '"Table" must be a table of text keys and values'),
        ("concat", {"paths": "a,b"}, '"Fields" must be a list of text'),
        ("lower", {"x": 1}, 'unknown option "x" (it has no options)'),
        (
            "parse_datetime",
            {"timezone": "Europe/Pari"},
            'unknown time zone "Europe/Pari" (use a name like "Europe/Paris" or "UTC")',
        ),
        ("template", {"template": "{a"}, 'the template has an unmatched "{" (write {{ for a literal one)'),
        ("arithmetic", {"operation": "add"}, '"Number" is required to add'),
        ("money_to_minor", {"currency": "EURO"}, '"EURO" is not a currency code like "EUR"'),
    ],
)
def test_it_explains_bad_options(name, options, problem):
    assert validate_options(name, options) == [problem]


def test_it_accepts_good_options():
    assert validate_options("lookup", {"table": {"won": "closed"}, "case_insensitive": True}) == []


def test_it_refuses_to_run_with_bad_options():
    with pytest.raises(TransformError, match='"Convert to" is required'):
        run_transform("cast", "1", {})


def test_it_passes_none_through_most_transforms():
    for name in REQUIRED_NAMES - {"default", "template", "concat", "count"}:
        options = {
            "cast": {"to": "integer"},
            "lookup": {"table": {}},
            "arithmetic": {"operation": "negate"},
            "money_to_minor": {"currency": "EUR"},
            "minor_to_money": {"currency": "EUR"},
            "replace": {"find": "a"},
        }.get(name, {})
        assert run_transform(name, None, options) is None, name


def test_it_runs_single_value_transforms_on_each_item_of_a_list():
    assert run_transform("upper", ["a", None, "b"]) == ["A", None, "B"]


# --- cast ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "to", "expected"),
    [
        ("12", "integer", 12),
        ("12.0", "integer", 12),
        (" -7 ", "integer", -7),
        (12.0, "integer", 12),
        ("12.5", "number", 12.5),
        (3, "number", 3.0),
        ("yes", "boolean", True),
        ("No", "boolean", False),
        ("1", "boolean", True),
        (0, "boolean", False),
        ("0.1", "decimal", "0.1"),
        (0.1, "decimal", "0.1"),
        ("1e3", "decimal", "1000"),
        ("12.50", "decimal", "12.50"),
        (12, "string", "12"),
        (True, "string", "true"),
        ({"a": 1}, "string", '{"a":1}'),
    ],
)
def test_it_casts(value, to, expected):
    result = run_transform("cast", value, {"to": to})
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "to", "message"),
    [
        ("12.5", "integer", 'cannot convert "12.5" to an integer: it has a fractional part'),
        ("abc", "integer", 'cannot convert "abc" to a number'),
        ("maybe", "boolean", 'cannot convert "maybe" to true/false (use yes/no, true/false or 1/0)'),
        (True, "number", "cannot convert true to a number"),
        ("1e999", "integer", '"1e999" is too large'),
    ],
)
def test_it_explains_failed_casts(value, to, message):
    with pytest.raises(TransformError) as caught:
        run_transform("cast", value, {"to": to})
    assert str(caught.value) == message


@given(st.integers())
def test_it_casts_integers_to_text_and_back(number):
    text = run_transform("cast", number, {"to": "string"})
    assert run_transform("cast", text, {"to": "integer"}) == number


@given(st.from_regex(r"-?[1-9][0-9]{0,30}|0", fullmatch=True))
def test_it_casts_integer_text_to_integers_and_back(text):
    number = run_transform("cast", text, {"to": "integer"})
    assert run_transform("cast", number, {"to": "string"}) == text


# --- dates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("2026-11-23T10:00:00Z", {}, "2026-11-23T10:00:00Z"),
        ("2026-11-23T11:00:00+01:00", {}, "2026-11-23T10:00:00Z"),
        ("2026-11-23 11:00", {"timezone": "Europe/Paris"}, "2026-11-23T10:00:00Z"),
        ("2026-07-01 11:00", {"timezone": "Europe/Paris"}, "2026-07-01T09:00:00Z"),  # summer time
        (
            "23/11/2026 11:00",
            {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"},
            "2026-11-23T10:00:00Z",
        ),
        ("Nov 23 2026 10:00", {}, "2026-11-23T10:00:00Z"),
        ("2026-11-23", {}, "2026-11-23T00:00:00Z"),
        (1795428000, {}, "2026-11-23T10:00:00Z"),
    ],
)
def test_it_parses_datetimes_to_utc(value, options, expected):
    assert run_transform("parse_datetime", value, options) == expected


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        ("Febuary 3", {}, '"Febuary 3" is not a date I can read'),
        ("Nov 23", {}, '"Nov 23" is not a complete date (it needs a day, month and year)'),
        ("2026-11-23", {"format": "%d/%m/%Y"}, '"2026-11-23" does not match the format "%d/%m/%Y"'),
        ({"day": 3}, {}, "expects text, but got an object"),
    ],
)
def test_it_explains_unreadable_datetimes(value, options, message):
    with pytest.raises(TransformError) as caught:
        run_transform("parse_datetime", value, options)
    assert str(caught.value) == message


def test_it_formats_datetimes_in_a_time_zone():
    assert run_transform("format_datetime", "2026-11-23T10:00:00Z", {"timezone": "Europe/Paris"}) == (
        "2026-11-23T11:00:00+01:00"
    )
    assert run_transform("format_datetime", 1795428000, {"format": "%d.%m.%Y %H:%M"}) == "23.11.2026 10:00"
    assert run_transform("format_datetime", "2026-11-23T10:00:00") == "2026-11-23T10:00:00Z"


def test_it_formats_dates_on_the_calendar_day_of_the_zone():
    assert run_transform("format_date", "2026-11-23T23:30:00Z", {"timezone": "Asia/Tokyo"}) == "2026-11-24"
    assert run_transform(
        "format_date", "2026-11-23", {"format": "%d/%m/%Y", "timezone": "America/New_York"}
    ) == ("23/11/2026")


# --- lookup, template, concat, split, join ---------------------------------------------------------------


def test_it_looks_values_up():
    table = {"won": "closed", "lost": "released"}
    assert run_transform("lookup", "won", {"table": table}) == "closed"
    assert run_transform("lookup", "WON", {"table": table, "case_insensitive": True}) == "closed"
    assert run_transform("lookup", "open", {"table": table, "default": "pending"}) == "pending"
    assert run_transform("lookup", 1, {"table": {"1": "one"}}) == "one"


def test_it_lists_known_keys_when_a_lookup_fails():
    table = {key: key for key in "abcdefg"}
    with pytest.raises(TransformError) as caught:
        run_transform("lookup", "z", {"table": table})
    assert str(caught.value) == 'no entry for "z" in the lookup table (it has "a", "b", "c", "d", "e", ...)'


def test_it_fills_templates_from_the_record():
    record = {"first_name": "Ann", "customer": {"name": "ACME"}, "lines": [{"sku": "A"}]}
    options = {"template": "{first_name} {last_name} @ {customer.name} #{lines[0].sku} {{{value}}}"}
    assert run_transform("template", "v", options, record) == "Ann  @ ACME #A {v}"


def test_it_combines_fields():
    record = {"first": "Ann", "middle": "", "last": "Smith", "tags": ["a", "b"]}
    assert run_transform("concat", None, {"paths": ["first", "middle", "last"]}, record) == "Ann Smith"
    assert run_transform("concat", "Dr", {"paths": ["last"], "separator": ". "}, record) == "Dr. Smith"
    assert (
        run_transform(
            "concat", None, {"paths": ["first", "middle"], "skip_empty": False, "separator": "|"}, record
        )
        == "Ann|"
    )
    assert run_transform("concat", None, {"paths": ["tags"]}, record) == "a b"
    assert run_transform("concat", None, {"paths": ["nothing"]}, record) is None


def test_it_splits_and_joins():
    assert run_transform("split", " a, b ,c") == ["a", "b", "c"]
    assert run_transform("split", "Ann Smith", {"separator": " ", "index": -1}) == "Smith"
    assert run_transform("split", "a", {"index": 3}) is None
    assert run_transform("join", ["a", None, 3]) == "a, 3"
    assert run_transform("first", ["x", "y"]) == "x"
    assert run_transform("first", []) is None
    assert run_transform("count", ["x", "y"]) == 2
    assert run_transform("count", None) == 0


# --- arithmetic and defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (3, {"operation": "add", "operand": 2}, 5),
        (0.1, {"operation": "add", "operand": 0.2}, 0.3),
        ("10", {"operation": "divide", "operand": 4}, 2.5),
        (10, {"operation": "divide", "operand": 5}, 2),
        (2.5, {"operation": "round"}, 3.0),
        (2.345, {"operation": "round", "places": 2}, 2.35),
        (7, {"operation": "negate"}, -7),
        (1.5, {"operation": "multiply", "operand": 2}, 3.0),
        (7, {"operation": "subtract", "operand": 0.5}, 6.5),
    ],
)
def test_it_calculates_exactly(value, options, expected):
    result = run_transform("arithmetic", value, options)
    assert result == expected and type(result) is type(expected)


def test_it_refuses_to_divide_by_zero():
    with pytest.raises(TransformError, match="cannot divide by zero"):
        run_transform("arithmetic", 1, {"operation": "divide", "operand": 0})


def test_it_fills_missing_or_empty_values_with_a_default():
    assert run_transform("default", None, {"value": 0}) == 0
    assert run_transform("default", "", {"value": "n/a"}) == "n/a"
    assert run_transform("default", "x", {"value": "n/a"}) == "x"


# --- money -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("1,250.50", "EUR", 125050),
        (12.345, "EUR", 1235),
        ("-0.005", "EUR", -1),
        (1250, "JPY", 1250),
        ("1250.5", "JPY", 1251),
        ("1.2345", "KWD", 1235),
        (Decimal("0.1"), "usd", 10),
    ],
)
def test_it_converts_money_to_minor_units(value, currency, expected):
    assert run_transform("money_to_minor", value, {"currency": currency}) == expected


def test_it_reads_the_currency_from_the_record():
    record = {"total": "99.99", "currency": "BHD"}
    assert run_transform("money_to_minor", "99.99", {"currency_path": "currency"}, record) == 99990
    with pytest.raises(TransformError, match='the record has no currency at "currency"'):
        run_transform("money_to_minor", "1", {"currency_path": "currency"}, {})


def test_it_explains_an_amount_it_cannot_read():
    with pytest.raises(TransformError) as caught:
        run_transform("money_to_minor", "12,5O", {"currency": "EUR"})
    assert str(caught.value) == 'cannot convert "12,5O" to a number'


def test_it_converts_minor_units_back_to_money():
    assert run_transform("minor_to_money", 125050, {"currency": "EUR"}) == 1250.5
    assert run_transform("minor_to_money", 1250, {"currency": "JPY"}) == 1250.0
    assert run_transform("minor_to_money", "1235", {"currency": "KWD"}) == 1.235
    with pytest.raises(TransformError, match="not a whole number of minor units"):
        run_transform("minor_to_money", 12.5, {"currency": "EUR"})


@given(
    minor=st.integers(min_value=-(10**14), max_value=10**14),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "CLF"]),
)
def test_it_round_trips_minor_units(minor, currency):
    amount = run_transform("minor_to_money", minor, {"currency": currency})
    assert run_transform("money_to_minor", amount, {"currency": currency}) == minor


@given(amount=st.decimals(min_value=-(10**9), max_value=10**9, places=2))
def test_it_round_trips_amounts_with_two_decimals(amount):
    minor = run_transform("money_to_minor", str(amount), {"currency": "EUR"})
    assert Decimal(str(run_transform("minor_to_money", minor, {"currency": "EUR"}))) == amount


# --- text ----------------------------------------------------------------------------------------------------


def test_it_changes_text():
    assert run_transform("trim", "  a b ") == "a b"
    assert run_transform("upper", "ann") == "ANN"
    assert run_transform("lower", "ANN") == "ann"
    assert run_transform("title", "ann smith") == "Ann Smith"
    assert run_transform("replace", "a-b-c", {"find": "-", "replace_with": "/"}) == "a/b/c"


def test_it_explains_text_transforms_given_numbers():
    with pytest.raises(TransformError) as caught:
        run_transform("lower", 12)
    assert str(caught.value) == "expects text, but got 12"
