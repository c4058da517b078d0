"""The one strict JSON reader: what it refuses, and that it says why."""

import json

import pytest

from common import strictjson

NASTY = [
    (b'{"amount": NaN}', "NaN is not a JSON value"),
    (b'{"amount": -Infinity}', "-Infinity is not a JSON value"),
    (b'{"amount": 1e999}', "too large to store"),
    (b'{"name": "\\ud800"}', "lone UTF-16 surrogate"),
    (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
    (b'{"n": ' + b"9" * 5000 + b"}", "5000 digits long"),
    (b'{"n": 18446744073709551616}', "does not fit in 64 bits"),
    (b"[" * 10_000 + b"]" * 10_000, "nests deeper than 64 levels"),
    (b'{"a": "x\\u0000y"}', "NUL character"),
    (b"\xff\xfe", "not UTF-8"),
    (b"", "empty body"),
    (b"{not json", "line 1 column 2"),
]


@pytest.mark.parametrize(("raw", "reason"), NASTY)
def test_it_refuses_what_no_database_can_store_and_says_why(raw, reason):
    with pytest.raises(strictjson.JSONInputError) as caught:
        strictjson.loads(raw)
    assert reason in caught.value.message


def test_it_reads_ordinary_json_exactly_as_json_does():
    text = '{"id": "D-1", "amount": 12.5, "n": -9223372036854775808, "ok": true, "none": null, "l": [1, "é"]}'
    assert strictjson.loads(text) == json.loads(text)
    assert strictjson.loads(text.encode()) == json.loads(text)


def test_it_ignores_brackets_inside_strings_when_measuring_depth():
    text = json.dumps({"text": "[" * 500})
    assert strictjson.loads(text) == {"text": "[" * 500}
    assert strictjson.nesting_depth(text) == 1


def test_it_accepts_nesting_up_to_the_limit():
    assert strictjson.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(strictjson.JSONInputError):
        strictjson.loads("[" * 65 + "]" * 65)


def test_it_locates_the_position_for_a_person_to_fix():
    with pytest.raises(strictjson.JSONInputError) as caught:
        strictjson.loads('{\n  "a": NaN\n}')
    assert caught.value.located == "line 2 column 8: NaN is not a JSON value (use null or a number)"


def test_it_checks_values_another_parser_already_read():
    assert strictjson.check_value({"a": [1, 2.5, "x"]}) == {"a": [1, 2.5, "x"]}
    for bad in ({"a": float("nan")}, {"a": 2**70}, {"a": "\ud800"}, {"a": "\x00"}):
        with pytest.raises(strictjson.JSONInputError):
            strictjson.check_value(bad)
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(strictjson.JSONInputError):
        strictjson.check_value(deep)
