import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.paths import get_path, set_path
from mappings.engine import (
    CompiledMapping,
    MappingError,
    RuleError,
    apply_mapping,
    compile_rules,
    describe_rule,
    diff_rules,
    preview_mapping,
    validate_rules,
)
from mappings.transforms import TRANSFORMS

DEAL = {
    "id": "D-1001",
    "amount": "1,250.50",
    "currency": "EUR",
    "stage": "won",
    "closed_at": "2026-11-23 11:00",
    "customer": {"email": " Ann@Example.COM ", "first_name": "ann", "last_name": "smith"},
    "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": "3"}],
}


def transformed(target: str, source: str, name: str, **options) -> dict:
    """The rule that writes target from source through one transform with these options."""
    return {"target": target, "source": source, "transforms": [{"name": name, "options": options}]}


INVENTORY_ADJUSTMENT = [
    transformed("reference", "id", "template", template="CRM-{value}"),
    transformed("reason", "stage", "lookup", table={"won": "sale", "lost": "release"}),
    {"target": "lines[].sku", "source": "lines[].sku"},
    {
        "target": "lines[].quantity",
        "source": "lines[].quantity",
        "transforms": [
            {"name": "cast", "options": {"to": "integer"}},
            {"name": "arithmetic", "options": {"operation": "negate"}},
        ],
        "note": "stock leaves the warehouse",
    },
]

ACCOUNTING_PAYMENT = [
    transformed("amount_minor", "amount", "money_to_minor", currency_path="currency"),
    {"target": "currency", "source": "currency"},
    {
        "target": "payer.email",
        "source": "customer.email",
        "transforms": [{"name": "trim"}, {"name": "lower"}],
    },
    {
        "target": "payer.name",
        "transforms": [
            {"name": "template", "options": {"template": "{customer.first_name} {customer.last_name}"}},
            {"name": "title"},
        ],
    },
    transformed("paid_at", "closed_at", "parse_datetime", timezone="Europe/Paris"),
    {"target": "method", "constant": "bank_transfer"},
]


# --- the realistic example ---------------------------------------------------------------------


def test_it_maps_a_won_deal_to_an_inventory_adjustment():
    assert apply_mapping(INVENTORY_ADJUSTMENT, DEAL) == {
        "reference": "CRM-D-1001",
        "reason": "sale",
        "lines": [{"sku": "A-1", "quantity": -2}, {"sku": "B-2", "quantity": -3}],
    }


def test_it_maps_a_won_deal_to_an_accounting_payment():
    assert apply_mapping(ACCOUNTING_PAYMENT, DEAL) == {
        "amount_minor": 125050,
        "currency": "EUR",
        "payer": {"email": "ann@example.com", "name": "Ann Smith"},
        "paid_at": "2026-11-23T10:00:00Z",
        "method": "bank_transfer",
    }


def test_it_leaves_the_source_record_untouched():
    source = copy.deepcopy(DEAL)
    apply_mapping(INVENTORY_ADJUSTMENT + [{"target": "raw", "source": "customer"}], source)
    assert source == DEAL


def test_it_reuses_a_compiled_mapping_for_many_records():
    compiled = compile_rules(ACCOUNTING_PAYMENT)
    other = {**DEAL, "amount": 1000, "currency": "JPY"}
    assert compiled.apply(DEAL)["amount_minor"] == 125050
    assert compiled.apply(other)["amount_minor"] == 1000
    assert isinstance(compiled, CompiledMapping)


def test_it_is_not_affected_by_later_edits_to_the_rules():
    rules = copy.deepcopy(INVENTORY_ADJUSTMENT)
    compiled = compile_rules(rules)
    rules[1]["transforms"][0]["options"]["table"]["won"] = "changed"
    assert compiled.apply(DEAL)["reason"] == "sale"


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("customer.email", " Ann@Example.COM "),
        ("lines.0.sku", "A-1"),
        ("lines[1].sku", "B-2"),
        ("lines[-1].sku", "B-2"),
        ("lines[].sku", ["A-1", "B-2"]),
        ("lines[5].sku", None),
        ("customer.phone", None),
        ("stage.name", None),
    ],
)
def test_it_reads_paths(path, expected):
    assert get_path(DEAL, path) == expected


def test_it_reads_keys_with_dashes_and_underscores():
    assert get_path({"x-request": {"order_id": 7}}, "x-request.order_id") == 7


def test_it_writes_paths_creating_objects_and_lists():
    record: dict = {}
    set_path(record, "customer.email", "a@b")
    set_path(record, "lines[1].sku", "B")
    set_path(record, "tags.0", "x")
    assert record == {"customer": {"email": "a@b"}, "lines": [{}, {"sku": "B"}], "tags": {"0": "x"}}


def test_it_writes_a_list_into_every_item():
    record = {"lines": [{"sku": "A"}]}
    set_path(record, "lines[].quantity", [1, 2])
    assert record == {"lines": [{"sku": "A", "quantity": 1}, {"quantity": 2}]}


def test_it_refuses_to_write_through_a_value():
    with pytest.raises(ValueError, match='"customer" already holds text'):
        set_path({"customer": "Ann"}, "customer.email", "a@b")


_KEYS = st.text(alphabet="abcxyz_-0123456789", min_size=1, max_size=6)
_PARTS = st.lists(st.one_of(_KEYS, st.integers(min_value=0, max_value=4)), min_size=1, max_size=5).filter(
    lambda parts: isinstance(parts[0], str)
)


def _path_text(parts: list) -> str:
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


@given(parts=_PARTS, value=st.one_of(st.integers(), st.text(), st.booleans(), st.floats(allow_nan=False)))
def test_it_reads_back_what_it_wrote(parts, value):
    record: dict = {}
    set_path(record, _path_text(parts), value)
    assert get_path(record, _path_text(parts)) == value


# --- rule semantics ------------------------------------------------------------------------------


def test_it_omits_a_target_whose_value_is_missing():
    rules = [{"target": "phone", "source": "customer.phone"}, {"target": "stage", "source": "stage"}]
    assert apply_mapping(rules, DEAL) == {"stage": "won"}


def test_it_writes_null_when_the_rule_keeps_nulls():
    assert apply_mapping([{"target": "phone", "source": "customer.phone", "keep_null": True}], DEAL) == {
        "phone": None
    }


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (transformed("phone", "customer.phone", "default", value="n/a"), {"phone": "n/a"}),
        (transformed("skus", "lines[].sku", "join", separator="|"), {"skus": "A-1|B-2"}),
    ],
    ids=["it_fills_a_missing_value_with_a_default", "it_runs_a_whole_list_transform_on_the_list"],
)
def test_a_rule_with_a_transform(rule, expected):
    assert apply_mapping([rule], DEAL) == expected


def test_it_fills_every_item_with_a_single_value_whatever_the_rule_order():
    rules = [
        {"target": "lines[].warehouse", "constant": "MAIN"},
        {"target": "lines[].sku", "source": "lines[].sku"},
    ]
    assert apply_mapping(rules, DEAL) == {
        "lines": [{"sku": "A-1", "warehouse": "MAIN"}, {"sku": "B-2", "warehouse": "MAIN"}]
    }


def test_it_skips_missing_elements_of_a_list():
    source = {"lines": [{"sku": "A"}, {"qty": 2}]}
    assert apply_mapping([{"target": "items[].sku", "source": "lines[].sku"}], source) == {
        "items": [{"sku": "A"}]
    }


def test_it_reports_every_failing_rule_with_its_field():
    rules = [
        transformed("amount_minor", "amount", "money_to_minor", currency="EUR"),
        transformed("reason", "stage", "lookup", table={"lost": "x"}),
        {"target": "stage", "source": "stage"},
    ]
    with pytest.raises(MappingError) as caught:
        apply_mapping(rules, {**DEAL, "amount": "12,5O"})
    assert [error.index for error in caught.value.errors] == [0, 1]
    assert caught.value.errors[0].message == 'Rule 1 (amount_minor): cannot convert "12,5O" to a number'
    assert caught.value.errors[1].message.startswith(
        'Rule 2 (reason): no entry for "won" in the lookup table'
    )
    assert str(caught.value) == "; ".join(error.message for error in caught.value.errors)


def test_it_names_the_list_item_that_failed():
    rules = [transformed("q[]", "lines[].quantity", "cast", to="integer")]
    with pytest.raises(MappingError, match="item 2: cannot convert"):
        apply_mapping(rules, {"lines": [{"quantity": "1"}, {"quantity": "two"}]})


def test_it_reports_a_conflict_between_rules_as_an_error():
    rules = [
        {"target": "customer", "source": "stage"},
        {"target": "customer.email", "source": "customer.email"},
    ]
    with pytest.raises(MappingError, match=r"Rule 2 \(customer.email\): cannot write"):
        apply_mapping(rules, DEAL)


def test_it_rejects_a_record_that_is_not_an_object():
    with pytest.raises(MappingError, match="must be a JSON object"):
        apply_mapping(INVENTORY_ADJUSTMENT, ["not", "a", "record"])


# --- structural validation ------------------------------------------------------------------------


def test_it_lists_every_structural_problem_at_once():
    rules = [
        {"target": "a", "source": "x", "constant": 1},
        {"target": "b", "source": "x", "transforms": [{"name": "lowr"}]},
        {"target": "c", "source": "x", "transforms": [{"name": "cast", "options": {"to": "int"}}]},
        {"target": "d..e", "source": "x[y]"},
        {"target": "a", "source": "x", "transfroms": []},
        "not a rule",
        {"target": "f"},
    ]
    with pytest.raises(MappingError) as caught:
        compile_rules(rules)
    messages = [error.message for error in caught.value.errors]
    assert messages == [
        "Rule 1 (a): use either a source field or a constant, not both",
        'Rule 2 (b): transform 1: unknown transform "lowr" (did you mean "lower"?)',
        'Rule 3 (c): transform 1 (Change type): "Convert to" must be one of: string, integer, number, boolean, decimal (not "int")',
        'Rule 4 (d..e): the target "d..e" is not a valid path: it has an empty part',
        'Rule 4 (d..e): the source "x[y]" is not a valid path: use [] or a number like [0], not "[y]"',
        'Rule 5 (a): unknown setting "transfroms" (allowed: target, source, constant, transforms, note, keep_null)',
        "Rule 5 (a): rule 1 already writes this field",
        "Rule 6: must be an object with a target field",
        "Rule 7 (f): choose a source field, a constant, or a transform that produces a value",
    ]


def test_it_requires_rules_to_be_a_list():
    assert validate_rules({"target": "x"}) == [RuleError(-1, "", "The rules must be a list.")]


def test_it_accepts_valid_rules():
    assert validate_rules(INVENTORY_ADJUSTMENT + ACCOUNTING_PAYMENT[:1]) == []


def test_it_checks_options_that_depend_on_each_other():
    rules = [{"target": "m", "source": "amount", "transforms": [{"name": "money_to_minor", "options": {}}]}]
    assert "choose either" in validate_rules(rules)[0].message


# --- preview ---------------------------------------------------------------------------------------


def test_it_previews_what_succeeds_and_lists_what_fails():
    rules = [
        {"target": "reference", "source": "id"},
        {"target": "bad", "source": "stage", "transforms": [{"name": "nope"}]},
        {"target": "total", "source": "stage", "transforms": [{"name": "cast", "options": {"to": "number"}}]},
    ]
    preview = preview_mapping(rules, DEAL)
    assert preview.output == {"reference": "D-1001"}
    assert preview.values == ["D-1001", None, None]
    assert [error.index for error in preview.errors] == [1, 2]
    assert preview.errors[1].message == 'Rule 3 (total): cannot convert "won" to a number'


def test_it_previews_nonsense_without_raising():
    assert preview_mapping("rules", DEAL).errors[0].message == "The rules must be a list."
    assert (
        preview_mapping(INVENTORY_ADJUSTMENT, None).errors[0].message == "The record must be a JSON object."
    )


# --- descriptions and diffs ----------------------------------------------------------------------------


def test_it_describes_a_rule_in_plain_language():
    assert describe_rule(
        {"target": "customer.email", "source": "contact.email", "transforms": [{"name": "lower"}]}
    ) == ("customer.email ← contact.email, then Lower case")
    assert describe_rule({"target": "currency", "constant": "EUR"}) == 'currency ← "EUR"'
    assert describe_rule(ACCOUNTING_PAYMENT[3]) == (
        'payer.name ← Fill a template (template: "{customer.first_name} {customer.last_name}"), then Title case'
    )
    assert (
        describe_rule(INVENTORY_ADJUSTMENT[1]) == "reason ← stage, then Look up in a table (table: 2 entries)"
    )


def test_it_diffs_two_versions_by_target():
    old = [
        {"target": "a", "source": "x"},
        {"target": "b", "source": "y", "transforms": []},
        {"target": "c", "constant": 0},
    ]
    new = [
        {"target": "b", "source": "y"},
        {"target": "a", "source": "x", "transforms": [{"name": "lower"}]},
        {"target": "d", "constant": 1},
    ]
    assert diff_rules(old, new) == [
        {"target": "a", "change": "changed", "before": old[0], "after": new[1]},
        {"target": "d", "change": "added", "before": None, "after": new[2]},
        {"target": "c", "change": "removed", "before": old[2], "after": None},
    ]


def test_it_finds_no_differences_between_equal_versions():
    assert diff_rules(ACCOUNTING_PAYMENT, copy.deepcopy(ACCOUNTING_PAYMENT)) == []


# --- properties ----------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
_SOURCE_PATHS = st.sampled_from(
    ["id", "amount", "lines[].sku", "lines[].quantity", "customer", "customer.email", "x", "lines"]
)
_TARGET_PATHS = st.sampled_from(["out", "a.b", "items[].v", "items[].w", "items", "a"])
_STEPS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(sorted(TRANSFORMS)),
            "options": st.dictionaries(st.text(max_size=10), _JSON, max_size=2),
        }
    ),
    max_size=3,
)


def _option_values():
    """Options that pass validation, so the property reaches the transforms themselves."""
    return st.sampled_from(
        [
            {"name": "cast", "options": {"to": "integer"}},
            {"name": "cast", "options": {"to": "decimal"}},
            {"name": "cast", "options": {"to": "boolean"}},
            {"name": "parse_datetime", "options": {}},
            {"name": "format_date", "options": {"format": "%d/%m/%Y", "timezone": "Asia/Tokyo"}},
            {"name": "lookup", "options": {"table": {"a": 1}, "case_insensitive": True}},
            {"name": "template", "options": {"template": "{value}-{customer.email}"}},
            {"name": "concat", "options": {"paths": ["id", "lines[].sku"]}},
            {"name": "split", "options": {"index": 1}},
            {"name": "join", "options": {}},
            {"name": "arithmetic", "options": {"operation": "divide", "operand": 3}},
            {"name": "arithmetic", "options": {"operation": "round", "places": 2}},
            {"name": "money_to_minor", "options": {"currency_path": "currency"}},
            {"name": "minor_to_money", "options": {"currency": "KWD"}},
            {"name": "default", "options": {"value": 0}},
            {"name": "upper", "options": {}},
            {"name": "first", "options": {}},
            {"name": "count", "options": {}},
        ]
    )


_VALID_RULES = st.lists(
    st.fixed_dictionaries(
        {
            "target": _TARGET_PATHS,
            "source": _SOURCE_PATHS,
            "transforms": st.lists(_option_values(), max_size=3),
        }
    ),
    max_size=4,
)


@given(
    rules=_VALID_RULES,
    source=st.dictionaries(st.sampled_from(["id", "amount", "currency", "lines", "customer", "x"]), _JSON),
)
def test_it_only_ever_raises_a_mapping_error(rules, source):
    try:
        apply_mapping(rules, source)
    except MappingError as exc:
        assert all("could not compute" not in error.message for error in exc.errors), exc


@given(
    rules=st.one_of(
        _JSON,
        st.lists(
            st.fixed_dictionaries(
                {"target": _TARGET_PATHS | st.text(max_size=5), "source": _SOURCE_PATHS, "transforms": _STEPS}
            )
        ),
    ),
    source=_JSON,
)
def test_it_previews_anything_without_raising(rules, source):
    preview = preview_mapping(rules, source)
    assert all(isinstance(error, RuleError) for error in preview.errors)
    assert all("could not compute" not in error.message for error in preview.errors)
