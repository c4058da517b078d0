"""Which fields read from a sample a create must send: not the ones the target fills in itself."""

import pytest

from mappings.schema import (
    FieldSpec,
    fields_from_openapi,
    generated_by_target,
    infer_fields,
    record_names,
    required_on_create,
)


@pytest.mark.parametrize(
    "path",
    ["id", "_id", "uuid", "guid", "contact_id", "contactId", "created_at", "updated_at", "createdAt",
     "deleted_at", "paid_at", "customer.updated_at", "modified", "last_modified", "etag", "_links",
     "_links.self.href", "version", "created_by"],
)  # fmt: skip
def test_it_takes_ids_timestamps_and_bookkeeping_as_generated(path):
    assert generated_by_target(path, record_names=["contact"])


@pytest.mark.parametrize(
    "path",
    ["email", "name", "customer_id", "owner_id", "amount", "customer.id", "lines[].id", "lines[].sku",
     "identity", "paid", "status"],
)  # fmt: skip
def test_it_leaves_business_fields_and_references_to_other_records_to_the_sample(path):
    assert not generated_by_target(path, record_names=["contact"])


def test_it_only_takes_the_records_own_id_as_generated():
    assert generated_by_target("deal_id", record_names=record_names("Deal"))
    assert not generated_by_target("deal_id", record_names=record_names("/contacts"))


@pytest.mark.parametrize(
    ("words", "names"),
    [
        (("Contact", "/v1/contacts"), ["contact"]),
        (("", "/companies"), ["company"]),
        (("SalesOrder", "/sales-orders?active=1"), ["sales_order"]),
        (("Address",), ["address"]),
        (("/employees/",), ["employee"]),
    ],
)
def test_it_names_a_record_from_its_model_name_and_resource(words, names):
    assert record_names(*words) == names


def test_a_sample_of_a_contact_needs_its_business_fields_only_on_create():
    sample = {
        "id": "c_1",
        "contact_id": "C-7",
        "name": "Ann",
        "email": "ann@example.com",
        "company_id": "co_3",
        "phone": None,
        "created_at": "2026-12-01T10:00:00Z",
        "updatedAt": "2026-12-02T10:00:00Z",
    }
    fields = required_on_create(infer_fields(sample), record_names=record_names("/contacts"))
    required = {spec.path: spec.required for spec in fields}
    assert required == {
        "id": False,
        "contact_id": False,
        "name": True,
        "email": True,
        "company_id": True,
        "phone": False,  # null in the sample: never required
        "created_at": False,
        "updatedAt": False,
    }
    # Types and order are the sample's.
    assert [spec.path for spec in fields] == list(sample)
    assert fields[-1] == FieldSpec("updatedAt", "datetime", False)


def test_an_openapi_property_marked_read_only_is_not_required():
    document = {
        "openapi": "3.0.0",
        "components": {
            "schemas": {
                "Person": {
                    "type": "object",
                    "required": ["id", "email"],
                    "properties": {
                        "id": {"type": "string", "readOnly": True},
                        "email": {"type": "string"},
                    },
                }
            }
        },
    }
    assert fields_from_openapi(document, "Person") == [
        FieldSpec("id", "string"),
        FieldSpec("email", "string", True),
    ]
