"""What counts as a change of shape, and what a fingerprint tells apart (mappings/schema.py)."""

from mappings.schema import FieldSpec, opaque_paths, shape_changes, shape_fingerprint

FIELDS = [
    FieldSpec("id", "string", True),
    FieldSpec("email", "string", True),
    FieldSpec("phone", "string"),
    FieldSpec("amount", "integer", True),
    FieldSpec("metadata", "object"),
]
RECORD = {"id": "c1", "email": "a@example.com", "phone": "1", "amount": 5, "metadata": {"k": 1}}


def kinds(record: dict, watched=()) -> set[tuple[str, str, str]]:
    return {change.key for change in shape_changes(record, FIELDS, watched=watched)}


def without(name: str, **extra) -> dict:
    return {**{k: v for k, v in RECORD.items() if k != name}, **extra}


def test_a_record_that_fits_shows_no_change():
    assert kinds(RECORD) == set()
    assert kinds(without("phone")) == set()  # optional: records may leave it out
    assert kinds(without("phone"), watched={"phone"}) == set()  # even when a mapping reads it


def test_it_tells_each_kind_of_change():
    assert kinds({**RECORD, "coupon": "X"}) == {("added", "coupon", "")}
    assert kinds(without("amount")) == {("removed", "amount", "")}
    assert kinds(without("email", email_address="a@example.com")) == {("renamed", "email", "email_address")}
    assert kinds({**RECORD, "amount": "5"}) == {("type_changed", "amount", "")}
    assert kinds({**RECORD, "email": None}) == {("newly_null", "email", "")}


def test_an_optional_field_a_mapping_reads_is_renamed_away_not_just_absent():
    assert kinds(without("phone", mobile="2"), watched={"phone"}) == {("renamed", "phone", "mobile")}
    assert kinds(without("phone", mobile="2")) == {("added", "mobile", "")}


def test_a_rename_pairs_the_likeliest_name_of_the_right_type():
    record = without("email", count=3, email_addr="a@example.com", mail_note="x")
    assert ("renamed", "email", "email_addr") in kinds(record)


def test_a_fingerprint_sees_kinds_and_nulls_but_not_values_or_free_form_metadata():
    opaque = opaque_paths(FIELDS)
    same = shape_fingerprint(RECORD, opaque)
    assert shape_fingerprint({**RECORD, "id": "c2", "email": "b@example.com"}, opaque) == same
    assert shape_fingerprint({**RECORD, "metadata": {"other": [1, 2]}}, opaque) == same
    assert shape_fingerprint({**RECORD, "phone": None}, opaque) != same
    assert shape_fingerprint({**RECORD, "amount": "5"}, opaque) != same
    assert shape_fingerprint({**RECORD, "amount": 5.5}, opaque) != same
    assert shape_fingerprint(without("phone"), opaque) != same
