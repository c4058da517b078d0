import json

import pytest

from mappings.schema import (
    FieldSpec,
    Issue,
    SchemaError,
    detect_drift,
    fields_from_openapi,
    infer_fields,
    openapi_schema_names,
    validate_record,
)
from tests.factories import field_rows, openapi_yaml

DEAL = {
    "id": 1001,
    "amount": "1,250.50",
    "probability": 0.9,
    "won": True,
    "closed_on": "2026-11-23",
    "updated_at": "2026-11-23T10:00:00Z",
    "owner": None,
    "customer": {"email": "ann@example.com", "address": {"city": "Lyon"}},
    "tags": ["new", "web"],
    "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": 2.5, "note": "gift"}],
}


def specs(text: str) -> list[FieldSpec]:
    """Field specs written in the compact text form of field_table ("id:integer! owner ...")."""
    return [FieldSpec(*row) for row in field_rows(text)]


DEAL_FIELDS = specs(
    "id:integer! amount! probability:number! won:boolean! closed_on:date! updated_at:datetime! owner"
    " customer:object! customer.email! customer.address:object! customer.address.city!"
    " tags:array! lines:array! lines[].sku! lines[].quantity:number! lines[].note"
)


# --- inference -------------------------------------------------------------------------------------------


def test_it_infers_fields_from_a_sample_in_sample_order():
    assert infer_fields(DEAL) == DEAL_FIELDS


def test_it_refuses_a_sample_that_is_not_an_object():
    with pytest.raises(SchemaError, match="must be a JSON object"):
        infer_fields([DEAL])


def test_it_accepts_the_sample_it_inferred_from():
    assert detect_drift(DEAL, infer_fields(DEAL)) == []


# --- OpenAPI -------------------------------------------------------------------------------------------------

OPENAPI_YAML = openapi_yaml(
    "CRM",
    """
Money:
  type: object
  required: [amount]
  properties:
    amount: {type: string, description: Decimal amount}
    currency: {type: string}
Entity:
  type: object
  required: [id]
  properties:
    id: {type: integer}
    created: {type: string, format: date-time}
Deal:
  allOf:
    - $ref: '#/components/schemas/Entity'
    - type: object
      required: [total]
      properties:
        total: {$ref: '#/components/schemas/Money'}
        closed_on: {type: string, format: date, nullable: true}
        lines:
          type: array
          items:
            type: object
            properties:
              sku: {type: string}
              quantity: {type: number}
        tags: {type: array, items: {type: string}}
Category:
  type: object
  properties:
    name: {type: string}
    parent: {$ref: '#/components/schemas/Category'}
""",
)


def test_it_lists_openapi_schema_names():
    assert openapi_schema_names(OPENAPI_YAML) == ["Money", "Entity", "Deal", "Category"]


def test_it_reads_fields_from_an_openapi_schema():
    assert fields_from_openapi(OPENAPI_YAML, "Deal") == [
        *specs("id:integer! created:datetime total:object!"),
        FieldSpec("total.amount", "string", True, "Decimal amount"),
        *specs("total.currency closed_on:date lines:array lines[].sku lines[].quantity:number tags:array"),
    ]


def test_it_stops_expanding_a_schema_that_refers_to_itself():
    paths = [spec.path for spec in fields_from_openapi(OPENAPI_YAML, "Category")]
    assert paths[:3] == ["name", "parent", "parent.name"]
    assert max(path.count(".") for path in paths) == 5  # six levels deep, then it stops


def test_it_reads_swagger_2_definitions_from_json():
    document = json.dumps(
        {
            "swagger": "2.0",
            "definitions": {
                "Employee": {
                    "type": "object",
                    "required": ["email"],
                    "properties": {
                        "email": {"type": "string"},
                        "hired": {"type": "string", "format": "date"},
                    },
                }
            },
        }
    )
    assert openapi_schema_names(document) == ["Employee"]
    assert fields_from_openapi(document, "Employee") == [
        FieldSpec("email", "string", True),
        FieldSpec("hired", "date"),
    ]


@pytest.mark.parametrize(
    ("document", "name", "message"),
    [
        ("openapi: [unclosed", "X", "the document is neither valid JSON nor valid YAML near line 2"),
        ("- a\n- b", "X", "the document must be a JSON or YAML object"),
        ({"openapi": "3.0.0"}, "X", "no schemas found: expected components.schemas (OpenAPI 3) or definitions (Swagger 2)"),
        (OPENAPI_YAML, "Dael", 'the document has no schema "Dael" (available: Money, Entity, Deal, Category)'),
        ({"definitions": {"A": {"$ref": "#/definitions/B"}}}, "A", 'the reference "#/definitions/B" points at nothing in the document'),
    ],
)  # fmt: skip
def test_it_explains_documents_it_cannot_use(document, name, message):
    with pytest.raises(SchemaError) as caught:
        fields_from_openapi(document, name)
    assert str(caught.value) == message


# --- validation and drift ------------------------------------------------------------------------------------------


def wrong_type(path: str, expected: str, found: str) -> Issue:
    return Issue(path, "wrong_type", f'"{path}" should be {expected}, but it is {found}')


def missing(path: str) -> Issue:
    return Issue(path, "missing_required", f'"{path}" is required but missing')


def unknown(path: str) -> Issue:
    return Issue(path, "unknown_field", f'"{path}" is not in the data model')


def test_it_reports_missing_required_fields_and_wrong_types():
    record = {
        "id": True,
        "amount": "12.00",
        "probability": "high",
        "won": False,
        "closed_on": "23/11/2026",
        "updated_at": "2026-11-23T10:00:00+01:00",
        "customer": {"email": None},
        "tags": "new",
        "lines": [{"sku": "A-1", "quantity": 1}, {"quantity": "2"}],
    }
    assert validate_record(record, DEAL_FIELDS) == [
        wrong_type("id", "a whole number", "true"),
        wrong_type("probability", "a number", 'the text "high"'),
        wrong_type("closed_on", "a date (YYYY-MM-DD)", 'the text "23/11/2026"'),
        missing("customer.email"),
        missing("customer.address"),
        wrong_type("tags", "a list", 'the text "new"'),
        missing("lines[1].sku"),
        wrong_type("lines[1].quantity", "a number", 'the text "2"'),
    ]


def test_it_only_requires_fields_of_objects_that_are_present():
    fields = [FieldSpec("shipping", "object"), FieldSpec("shipping.city", "string", required=True)]
    assert validate_record({}, fields) == []
    assert [issue.path for issue in validate_record({"shipping": {}}, fields)] == ["shipping.city"]


def test_it_ignores_unknown_fields_when_validating():
    assert validate_record({**DEAL, "extra": 1}, DEAL_FIELDS) == []


def test_it_detects_fields_the_model_does_not_declare():
    record = {
        **DEAL,
        "source": "web",
        "customer": {**DEAL["customer"], "phone": "+33"},
        "lines": [
            {"sku": "A", "quantity": 1, "colour": "red"},
            {"sku": "B", "quantity": 1, "colour": "blue"},
        ],
    }
    assert detect_drift(record, DEAL_FIELDS) == [
        unknown("customer.phone"),
        unknown("lines[].colour"),
        unknown("source"),
    ]


def test_it_allows_anything_inside_an_object_declared_without_fields():
    fields = [FieldSpec("id", "integer", True), FieldSpec("metadata", "object"), FieldSpec("items", "array")]
    record = {"id": 1, "metadata": {"utm": {"source": "ad"}}, "items": [{"anything": 1}]}
    assert detect_drift(record, fields) == []


def test_it_combines_validation_issues_with_drift():
    issues = detect_drift({"id": "x", "new_field": 1}, [FieldSpec("id", "integer", True)])
    assert [(issue.path, issue.kind) for issue in issues] == [
        ("id", "wrong_type"),
        ("new_field", "unknown_field"),
    ]
