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

DEAL_FIELDS = [
    FieldSpec("id", "integer", True),
    FieldSpec("amount", "string", True),
    FieldSpec("probability", "number", True),
    FieldSpec("won", "boolean", True),
    FieldSpec("closed_on", "date", True),
    FieldSpec("updated_at", "datetime", True),
    FieldSpec("owner", "string", False),
    FieldSpec("customer", "object", True),
    FieldSpec("customer.email", "string", True),
    FieldSpec("customer.address", "object", True),
    FieldSpec("customer.address.city", "string", True),
    FieldSpec("tags", "array", True),
    FieldSpec("lines", "array", True),
    FieldSpec("lines[].sku", "string", True),
    FieldSpec("lines[].quantity", "number", True),
    FieldSpec("lines[].note", "string", False),
]


# --- inference -------------------------------------------------------------------------------------------


def test_it_infers_fields_from_a_sample_in_sample_order():
    assert infer_fields(DEAL) == DEAL_FIELDS


def test_it_refuses_a_sample_that_is_not_an_object():
    with pytest.raises(SchemaError, match="must be a JSON object"):
        infer_fields([DEAL])


def test_it_accepts_the_sample_it_inferred_from():
    assert detect_drift(DEAL, infer_fields(DEAL)) == []


# --- OpenAPI -------------------------------------------------------------------------------------------------

OPENAPI_YAML = """
openapi: 3.0.3
info: {title: CRM, version: "1"}
paths: {}
components:
  schemas:
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
"""


def test_it_lists_openapi_schema_names():
    assert openapi_schema_names(OPENAPI_YAML) == ["Money", "Entity", "Deal", "Category"]


def test_it_reads_fields_from_an_openapi_schema():
    assert fields_from_openapi(OPENAPI_YAML, "Deal") == [
        FieldSpec("id", "integer", True),
        FieldSpec("created", "datetime", False),
        FieldSpec("total", "object", True),
        FieldSpec("total.amount", "string", True, "Decimal amount"),
        FieldSpec("total.currency", "string", False),
        FieldSpec("closed_on", "date", False),
        FieldSpec("lines", "array", False),
        FieldSpec("lines[].sku", "string", False),
        FieldSpec("lines[].quantity", "number", False),
        FieldSpec("tags", "array", False),
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
        ("openapi: [unclosed", "X", "the document is neither valid JSON nor valid YAML near line 1"),
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
        Issue("id", "wrong_type", '"id" should be a whole number, but it is true'),
        Issue("probability", "wrong_type", '"probability" should be a number, but it is the text "high"'),
        Issue(
            "closed_on",
            "wrong_type",
            '"closed_on" should be a date (YYYY-MM-DD), but it is the text "23/11/2026"',
        ),
        Issue("customer.email", "missing_required", '"customer.email" is required but missing'),
        Issue("customer.address", "missing_required", '"customer.address" is required but missing'),
        Issue("tags", "wrong_type", '"tags" should be a list, but it is the text "new"'),
        Issue("lines[1].sku", "missing_required", '"lines[1].sku" is required but missing'),
        Issue(
            "lines[1].quantity",
            "wrong_type",
            '"lines[1].quantity" should be a number, but it is the text "2"',
        ),
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
        Issue("customer.phone", "unknown_field", '"customer.phone" is not in the data model'),
        Issue("lines[].colour", "unknown_field", '"lines[].colour" is not in the data model'),
        Issue("source", "unknown_field", '"source" is not in the data model'),
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
