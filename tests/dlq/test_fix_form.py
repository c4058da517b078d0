"""The field-by-field fix: built from the source model's fields, prefilled from the record; what
a person changes is typed by the field and written over a copy, the rest stays exactly as it was."""

import pytest

from dlq.forms import FixFieldsForm, editable_fields
from mappings.models import Field

FIELDS = [
    Field(path="id", type="string", required=True),
    Field(path="amount", type="number"),
    Field(path="quantity", type="integer"),
    Field(path="active", type="boolean"),
    Field(path="customer", type="object"),
    Field(path="customer.email", type="string", required=True),
    Field(path="tags", type="array"),
    Field(path="lines[].sku", type="string"),
    Field(path="note", type="string"),
]
RECORD = {
    "id": "deal_1", "amount": 12.5, "quantity": 2, "active": True, "customer": {"email": " Ann@X.com "},
    "tags": ["a"], "lines": [{"sku": "sku-desk"}], "extra": {"kept": 1},
}  # fmt: skip


def form(**changes) -> FixFieldsForm:
    initial = FixFieldsForm(fields=FIELDS, record=RECORD)
    data = {name: field.initial for name, field in initial.fields.items() if name != "note"}
    by_path = {field.path: name for name, field in initial.model_fields}
    data.update({by_path[path]: value for path, value in changes.items()})
    return FixFieldsForm(data, fields=FIELDS, record=RECORD)


def test_it_offers_the_fields_a_person_can_type_and_leaves_lists_to_the_raw_json():
    assert [f.path for f in editable_fields(FIELDS)] == [
        "id", "amount", "quantity", "active", "customer.email", "tags", "note",
    ]  # fmt: skip
    built = FixFieldsForm(fields=FIELDS, record=RECORD)
    assert built.list_paths == ["lines"]
    shown = {field.path: built.fields[name].initial for name, field in built.model_fields}
    assert shown == {
        "id": "deal_1", "amount": "12.5", "quantity": "2", "active": "true", "customer.email": " Ann@X.com ",
        "tags": '["a"]', "note": "",
    }  # fmt: skip


def test_an_untouched_form_sends_the_record_exactly_as_it_was():
    untouched = form()
    assert untouched.is_valid(), untouched.errors
    assert untouched.cleaned_data["record"] == RECORD


def test_it_types_each_change_by_its_field_and_keeps_the_rest():
    changed = form(
        **{"amount": "99", "quantity": "3", "active": "false", "customer.email": "ann@x.com", "note": "hi"}
    )
    assert changed.is_valid(), changed.errors
    assert changed.cleaned_data["record"] == {
        **RECORD, "amount": 99, "quantity": 3, "active": False, "customer": {"email": "ann@x.com"}, "note": "hi",
    }  # fmt: skip
    assert RECORD["customer"] == {"email": " Ann@X.com "}  # the original is not touched


def test_it_removes_an_optional_field_that_is_emptied():
    emptied = form(tags="")
    assert emptied.is_valid(), emptied.errors
    assert "tags" not in emptied.cleaned_data["record"]


@pytest.mark.parametrize(
    ("path", "typed", "error"),
    [
        ("id", "", "Required by the data model"),
        ("amount", "twelve", "Enter a number, e.g. 12.50."),
        ("quantity", "2.5", "Enter a whole number, e.g. 42."),
        ("tags", '{"a": 1}', "Enter a JSON list"),
        ("tags", "[1,", "This is not valid JSON"),
        ("amount", "1e999", "too large to store"),
    ],
)
def test_it_answers_a_value_that_does_not_fit_with_a_precise_error(path, typed, error):
    wrong = form(**{path: typed})
    assert not wrong.is_valid()
    assert error in str(wrong.errors)
