"""The one table of limits, and each limit refused at its reader with a message naming it."""

import dataclasses
import json
import subprocess
import sys

import pytest
import yaml

from common import strictjson, strictyaml
from common.limits import LIMITS, Limits
from mappings.conditions import ConditionError, parse_condition_text, validate_condition
from mappings.schema import SchemaError, fields_from_openapi


def test_every_limit_is_a_positive_whole_number_with_its_reason_beside_it():
    source = open(sys.modules[Limits.__module__].__file__).read()
    for field in dataclasses.fields(Limits):
        value = getattr(LIMITS, field.name)
        assert isinstance(value, int) and value > 0, field.name
        line = next(n for n, text in enumerate(source.splitlines()) if f"    {field.name}:" in text)
        assert source.splitlines()[line - 1].strip().startswith("#"), f"{field.name} has no reason above it"


def test_only_sizes_and_the_page_size_come_from_the_environment_and_bad_values_stop_the_start():
    code = "from common.limits import LIMITS; print(LIMITS.webhook_bytes, LIMITS.batch_bytes, LIMITS.api_max_limit)"
    env = {
        "HUB_MAX_WEBHOOK_BYTES": "2048",
        "HUB_MAX_BATCH_BYTES": "4096",
        "HUB_API_MAX_LIMIT": "100",
        "PATH": "",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2048", "4096", "100"]
    env["HUB_API_MAX_LIMIT"] = "lots"
    failed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "HUB_API_MAX_LIMIT must be a whole number" in failed.stderr


# --- JSON -------------------------------------------------------------------------------------


def test_json_keys_in_one_object_are_bounded():
    text = json.dumps({f"k{i}": i for i in range(LIMITS.json_object_keys + 1)})
    with pytest.raises(strictjson.JSONInputError, match="keys; the limit is 10,000"):
        strictjson.loads(text)
    assert len(strictjson.loads(json.dumps({f"k{i}": i for i in range(LIMITS.json_object_keys)}))) == 10_000


def test_json_keys_in_all_are_bounded():
    text = json.dumps([{f"k{i}": i for i in range(5000)}] * (LIMITS.json_total_keys // 5000 + 1))
    with pytest.raises(strictjson.JSONInputError, match="more than 500,000 keys in all"):
        strictjson.loads(text)


def test_json_text_values_are_bounded():
    with pytest.raises(strictjson.JSONInputError, match="characters long; the limit is 1,048,576"):
        strictjson.loads(json.dumps({"a": "x" * (LIMITS.json_string_chars + 1)}))
    with pytest.raises(strictjson.JSONInputError, match="the limit is 1,048,576"):
        strictjson.check_value({"a": "x" * (LIMITS.json_string_chars + 1)})
    assert strictjson.loads(json.dumps({"a": "x" * LIMITS.json_string_chars}))


def test_json_depth_and_numbers_come_from_the_table():
    assert strictjson.MAX_DEPTH == LIMITS.json_depth
    strictjson.loads("[" * LIMITS.json_depth + "]" * LIMITS.json_depth)
    with pytest.raises(strictjson.JSONInputError, match="nests deeper than 64"):
        strictjson.loads("[" * (LIMITS.json_depth + 1) + "]" * (LIMITS.json_depth + 1))
    with pytest.raises(strictjson.JSONInputError, match="the limit is 64"):
        strictjson.loads("1" * (LIMITS.json_number_chars + 1))


def test_size_over_measures_shared_values_without_writing_them():
    big = "a" * 1000
    assert not strictjson.size_over({"x": big}, 2000)
    assert strictjson.size_over([big] * 1_000_000, 4 * 1024 * 1024)  # a billion characters, at once


# --- YAML -------------------------------------------------------------------------------------


def test_deep_yaml_is_refused_before_the_parser_recurses():
    with pytest.raises(strictyaml.YAMLInputError, match="nests deeper than 64 levels") as caught:
        strictyaml.loads("[" * 50_000 + "]" * 50_000)
    assert caught.value.line == 1
    assert strictyaml.loads("[" * LIMITS.yaml_depth + "]" * LIMITS.yaml_depth)


def test_deep_yaml_crashed_the_c_parser_and_no_longer_reaches_it():
    """Run in a child: before the limit, this crashed the whole process (SIGSEGV in libyaml)."""
    code = "from common import strictyaml\ntry:\n    strictyaml.loads('[' * 50000 + ']' * 50000)\nexcept strictyaml.YAMLInputError as e:\n    print(e)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "nests deeper" in done.stdout


def test_billion_laughs_are_refused_by_their_expanded_size():
    laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
    )
    with pytest.raises(strictyaml.YAMLInputError, match="more than 200,000 values with its aliases expanded"):
        strictyaml.loads(laughs)


def test_aliases_are_counted_and_may_be_refused_outright():
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (LIMITS.yaml_aliases + 1)) + "]"
    with pytest.raises(strictyaml.YAMLInputError, match="more than 100 aliases"):
        strictyaml.loads(many)
    assert strictyaml.loads("a: &a 1\nb: *a") == {"a": 1, "b": 1}
    with pytest.raises(strictyaml.YAMLInputError, match="aliases"):
        strictyaml.loads("a: &a 1\nb: *a", aliases=False)


def test_an_alias_cannot_nest_a_value_deeper_than_the_limit():
    deep = "[" * 40 + "1" + "]" * 40
    with pytest.raises(strictyaml.YAMLInputError, match="nests deeper"):
        strictyaml.loads(f"a: &a {deep}\nb: {'[' * 30}*a{']' * 30}")


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(strictyaml.YAMLInputError, match="refers to a value that contains it"):
        strictyaml.loads("a: &a [1, *a]")


def test_invalid_yaml_still_gets_the_parsers_own_message():
    with pytest.raises(yaml.YAMLError):
        strictyaml.loads("flows: [\n  - name: x\n  bad")


# --- OpenAPI ----------------------------------------------------------------------------------

SELF_REF = {
    "components": {
        "schemas": {"A": {"properties": {k: {"$ref": "#/components/schemas/A"} for k in "abcdefg"}}}
    }
}


def test_a_300_byte_schema_that_refers_to_itself_is_refused_at_once_naming_the_loop():
    assert len(json.dumps(SELF_REF)) < 350
    with pytest.raises(
        SchemaError, match=r'"A" expands to more than 2,000 fields \(#/components/schemas/A refers'
    ):
        fields_from_openapi(json.dumps(SELF_REF), "A")


def test_a_long_chain_of_refs_is_refused():
    schemas = {f"S{i}": {"$ref": f"#/components/schemas/S{i + 1}"} for i in range(40)}
    schemas["S40"] = {"type": "object", "properties": {"id": {"type": "string"}}}
    schemas["Root"] = {"properties": {"x": {"$ref": "#/components/schemas/S0"}}}
    with pytest.raises(SchemaError, match="more than 32 references in a row"):
        fields_from_openapi({"components": {"schemas": schemas}}, "Root")


def test_allof_parts_that_multiply_are_refused_by_the_count_of_refs():
    schemas = {f"L{i}": {"allOf": [{"$ref": f"#/components/schemas/L{i + 1}"}] * 10} for i in range(8)}
    schemas["L8"] = {"properties": {"id": {"type": "string"}}}
    schemas["Root"] = {"properties": {"x": {"$ref": "#/components/schemas/L0"}}}
    with pytest.raises(SchemaError, match="follows more than 20,000 references"):
        fields_from_openapi({"components": {"schemas": schemas}}, "Root")


# --- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["(" * (LIMITS.filter_depth + 1) + "a = 1" + ")" * (LIMITS.filter_depth + 1), "not " * 17 + "a = 1"],
)
def test_filter_text_nesting_is_refused_before_the_parser_recurses(text):
    with pytest.raises(ConditionError, match="nests deeper than 16 levels"):
        parse_condition_text(text)


def test_filter_text_length_is_bounded():
    with pytest.raises(ConditionError, match="the limit is 2,000"):
        parse_condition_text("a = " + "1" * LIMITS.filter_chars)


def test_a_structured_filter_nested_too_deep_is_a_problem_not_a_crash():
    cond = {"path": "a", "op": "exists"}
    for _ in range(500):
        cond = {"not": cond}
    assert validate_condition(cond) == [
        f"the condition nests deeper than {LIMITS.filter_depth} levels (of not, all, any or parentheses)"
    ]
    assert parse_condition_text("(" * 16 + "a = 1" + ")" * 16) == {"path": "a", "op": "eq", "value": 1}


def test_yaml_numbers_longer_than_the_limit_are_refused_before_python_converts_them():
    with pytest.raises(strictyaml.YAMLInputError, match="5,000 characters long; the limit is 64"):
        strictyaml.loads("id: " + "9" * 5000)
    assert strictyaml.loads("id: '" + "9" * 5000 + "'") == {"id": "9" * 5000}  # quoted: text
