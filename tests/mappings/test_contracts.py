"""A target's contract: each problem in a mapped record named by the rule at fault; the request
checked against the API document's operations (path, method, body); compiled once per version."""

import copy

import pytest

from mappings.contracts import ApiContract, Contract, Request, RuleIndex, contract_for, format_ok
from mappings.schema import FieldSpec, fields_from_openapi_operation, openapi_operations
from tests.crm_vendor import CONTACTS, DOCUMENT
from tests.factories import SystemFactory, model_with_fields

RULES = RuleIndex(
    [
        {"target": "properties.email", "source": "contact.mail"},
        {"target": "properties.lifecyclestage", "constant": "gold"},
        {"target": "lines", "source": "items"},
    ]
)


def messages(violations) -> list[str]:
    return [violation.message for violation in violations]


@pytest.mark.parametrize(
    "kind, good, bad",
    [
        ("email", "ann@example.com", "bob at x"),
        ("date", "2026-12-07", "07/12/2026"),
        ("date-time", "2026-12-07T10:00:00Z", "2026-12-07"),
        ("uri", "https://example.com/a?b=1", "not a link"),
        ("uuid", "3f2a9c1e-1111-2222-3333-444455556666", "3f2a9c1e"),
    ],
)
def test_it_knows_the_formats_it_checks(kind, good, bad):
    assert format_ok(kind, good) and not format_ok(kind, bad)


def test_it_names_the_rule_that_produced_each_value_the_target_refuses():
    contract = Contract(
        (
            FieldSpec("properties.email", "string", True, format="email"),
            FieldSpec("properties.lifecyclestage", "string", enum=("lead", "customer")),
            FieldSpec("properties.firstname", "string", max_length=5),
            FieldSpec("lines[].sku", "string", True, min_length=3),
        )
    )
    record = {
        "properties": {"email": "bob at x", "lifecyclestage": "gold", "firstname": "Annabelle"},
        "lines": [{"sku": "DESK"}, {"sku": "X"}],
    }
    assert messages(contract.check(record, RULES)) == [
        'rule 1, properties.email ← contact.mail, produced the text "bob at x", which is not an email address',
        'rule 2, properties.lifecyclestage ← "gold", produced the text "gold", which is not one of the '
        "allowed values (lead, customer)",
        '"properties.firstname" is the text "Annabelle", which is longer than the 5 characters allowed',
        'rule 3, lines ← items, produced the text "X", which is shorter than the 3 characters needed',
    ]
    fine = {"properties": {"email": "ann@example.com", "lifecyclestage": "lead"}, "lines": []}
    assert contract.check(fine, RULES) == []


def test_it_says_which_required_field_no_rule_fills_and_which_rule_gave_nothing():
    contract = Contract((FieldSpec("properties.email", "string", True), FieldSpec("company", "string", True)))
    found = contract.check({"properties": {}}, RULES)
    assert messages(found) == [
        'rule 1, properties.email ← contact.mail, produced nothing, but "properties.email" is required',
        '"company" is required, but no mapping rule fills it',
    ]
    assert [(v.field, v.rule) for v in found] == [("properties.email", 0), ("company", None)]


def test_it_imports_a_model_from_an_operation_with_what_the_target_fills_in_itself():
    assert [op.label for op in openapi_operations(DOCUMENT)][:2] == [
        f"GET {CONTACTS} — List contacts",
        f"POST {CONTACTS} — Create a contact",
    ]
    read = fields_from_openapi_operation(DOCUMENT, f"POST {CONTACTS}")
    fields = {spec.path: spec for spec in read.fields}
    assert fields["properties.email"].required and fields["properties.email"].format == "email"
    assert fields["properties.lifecyclestage"].enum == ("subscriber", "lead", "customer")
    assert fields["properties.firstname"].max_length == 100
    assert read.generated == ["id", "createdAt", "updatedAt", "archived"]
    assert not any(fields[path].required for path in read.generated)
    assert (read.id_path, read.name, read.server_path) == ("id", "Contact", "")


def test_it_checks_the_request_against_the_operation_path_method_and_body():
    api = ApiContract(DOCUMENT, f"POST {CONTACTS}")
    base = "http://crm.example"
    body = {"properties": {"email": "ann@example.com", "nickname": 7}}
    assert messages(api.check(Request("POST", CONTACTS, body), base, RULES)) == [
        '"properties.nickname" is the number 7, which is not text'
    ]
    assert messages(api.check(Request("POST", CONTACTS, {"properties": {}}), base, RULES)) == [
        'rule 1, properties.email ← contact.mail, produced nothing, but "properties.email" is required by '
        f"POST {CONTACTS}"
    ]
    assert messages(api.check(Request("PUT", f"{CONTACTS}/9", {}), base, RULES)) == [
        f"it allows DELETE, GET, PATCH on {CONTACTS}/{{contactId}}, not PUT"
    ]
    assert messages(api.check(Request("POST", "/contacts", {}), base, RULES)) == [
        "there is no path /contacts in it, so POST /contacts would fail"
    ]
    assert api.check(Request("PATCH", f"{CONTACTS}/9", {"properties": {"a": "b"}}), base, RULES) == []


def test_it_reads_paths_below_the_documents_server_and_openapi_3_0_nullable_and_read_only():
    document = copy.deepcopy(DOCUMENT)
    document["servers"] = [{"url": "https://api.crm.example/v9"}]
    schema = document["components"]["schemas"]["ContactProperties"]
    schema["properties"]["owner"] = {"type": "string", "nullable": True}
    schema["properties"]["hs_id"] = {"type": "string", "readOnly": True}
    schema["required"] = ["email", "hs_id"]  # required in answers only: read-only
    api = ApiContract(document)
    body = {"properties": {"email": "ann@example.com", "owner": None}}
    assert api.check(Request("POST", f"/v9{CONTACTS}", body), "http://crm.example", RULES) == []
    assert api.check(Request("POST", CONTACTS, body), "http://crm.example/v9", RULES) == []


def test_it_checks_a_request_against_openapi_3_1_as_json_schema_2020_12():
    document = copy.deepcopy(DOCUMENT)
    document["openapi"] = "3.1.0"
    document["components"]["schemas"]["ContactProperties"]["properties"]["owner"] = {
        "type": ["string", "null"]
    }
    api = ApiContract(document)
    ok = {"properties": {"email": "ann@example.com", "owner": None}}
    assert api.check(Request("POST", CONTACTS, ok), "", RULES) == []
    bad = {"properties": {"email": "ann@example.com", "owner": 3}}
    assert messages(api.check(Request("POST", CONTACTS, bad), "", RULES)) == [
        '"properties.owner" is the number 3, which is not text'
    ]


@pytest.mark.django_db
def test_it_compiles_a_contract_once_per_model_version():
    model = model_with_fields(SystemFactory(), "Contact", CONTACTS, "properties.email!")
    model.api_document, model.api_operation = DOCUMENT, f"POST {CONTACTS}"
    model.save()
    first = contract_for(model)
    assert contract_for(model) is first  # the hot path: nothing compiled again
    assert first.api is not None and first.api.validator(CONTACTS, "POST") is first.api.validator(
        CONTACTS, "POST"
    )
    model.fields.filter(path="properties.email").update(format="email")
    changed = contract_for(model)
    assert changed is not first and changed.api is first.api  # same document, new fields
    model.save()  # a new version of the model: its document is read again
    assert contract_for(model).api is not first.api
