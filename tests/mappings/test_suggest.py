"""Same-named fields and likely pairs the mapper proposes."""

from mappings.schema import FieldSpec
from mappings.suggest import mapping_suggestions, same_named_source, words_of


def fields(*paths: str) -> list[FieldSpec]:
    """Field specs from "path" or "path:type"."""
    specs = []
    for text in paths:
        path, _, kind = text.partition(":")
        specs.append(FieldSpec(path=path, type=kind or "string"))
    return specs


def rules_by_target(sources, targets, **kwargs) -> dict[str, dict]:
    return {s.target: s.rule for s in mapping_suggestions(sources=sources, targets=targets, **kwargs)}


def test_it_reads_words_without_case_separators_humps_or_nesting():
    assert words_of("firstName") == ("first", "name")
    assert words_of("first_name") == ("first", "name")
    assert words_of("first-name") == ("first", "name")
    assert words_of("contact.FirstName") == ("first", "name")
    assert words_of("lines[].SKUCode") == ("sku", "code")


def test_it_matches_same_named_fields_across_styles_and_nesting():
    sources = fields("id", "firstName", "contact.email", "Amount:number", "customer.email_verified:boolean")
    targets = fields("first_name", "email", "amount:integer", "currency")
    found = rules_by_target(sources, targets)
    assert found["first_name"] == {"target": "first_name", "source": "firstName"}
    assert found["email"] == {"target": "email", "source": "contact.email"}
    assert found["amount"] == {"target": "amount", "source": "Amount"}
    assert "currency" not in found


def test_it_prefers_the_whole_path_then_the_shallowest_and_leaves_a_tie_to_the_admin():
    sources = fields("email", "customer.email", "billing.phone", "shipping.phone")
    assert same_named_source(FieldSpec("customer_email", "string"), sources).path == "customer.email"
    assert same_named_source(FieldSpec("email", "string"), sources).path == "email"
    assert same_named_source(FieldSpec("phone", "string"), sources) is None


def test_it_does_not_pair_a_container_with_a_value_nor_offer_list_items():
    sources = fields("customer:object", "customer.name", "lines:array", "lines[].sku")
    targets = fields("customer", "lines[].sku", "sku")
    assert rules_by_target(sources, targets) == {}


def test_it_suggests_an_email_address_under_another_name():
    found = mapping_suggestions(sources=fields("id", "email_address"), targets=fields("customer_email"))
    assert [(s.target, s.rule["source"], s.same_named) for s in found] == [
        ("customer_email", "email_address", False)
    ]
    assert "email" in found[0].why


def test_it_suggests_a_full_name_or_first_and_last_joined():
    assert rules_by_target(fields("full_name"), fields("name")) == {
        "name": {"target": "name", "source": "full_name"}
    }
    joined = rules_by_target(fields("id", "firstName", "lastName"), fields("contact_name"))
    assert joined["contact_name"] == {
        "target": "contact_name",
        "source": "firstName",
        "transforms": [{"name": "concat", "options": {"paths": ["lastName"], "separator": " "}}],
    }
    [offered] = mapping_suggestions(sources=fields("firstName", "lastName"), targets=fields("name"))
    assert offered.as_json()["source_label"] == "firstName + lastName"
    # A first name alone is not a name to fill from a full name.
    assert rules_by_target(fields("full_name"), fields("first_name")) == {}


def test_it_suggests_the_source_id_for_an_external_id_or_reference():
    sources = fields("deal_id", "title")
    targets = fields("id", "external_id", "reference", "customer_id", "crm_ref")
    found = rules_by_target(sources, targets, source_id_path="deal_id", source_names=("CRM", "Deal"))
    assert found["external_id"]["source"] == "deal_id"
    assert found["reference"]["source"] == "deal_id"
    assert found["crm_ref"]["source"] == "deal_id"
    assert "id" not in found  # the target's own id is the target's to make
    assert "customer_id" not in found  # another record's id


def test_a_same_name_wins_over_a_likely_pair():
    found = mapping_suggestions(sources=fields("email", "work_email"), targets=fields("email"))
    assert [(s.rule["source"], s.same_named) for s in found] == [("email", True)]


def test_it_leaves_the_target_own_id_to_the_target():
    found = rules_by_target(fields("id", "email"), fields("id", "email"), target_id_path="id")
    assert list(found) == ["email"]
    assert "number" not in rules_by_target(fields("number"), fields("number"), target_id_path="number")


def test_it_suggests_the_same_amount_in_the_same_unit_under_a_name_that_spells_the_unit_out():
    cents = "in cents (minor units)"
    sources = [FieldSpec("amount", "integer", unit=cents), FieldSpec("fee", "number")]
    targets = [
        FieldSpec("amount_minor", "integer", unit=cents),
        FieldSpec("fee_minor", "integer", unit=cents),
    ]
    [found] = mapping_suggestions(sources=sources, targets=targets)
    assert (found.target, found.rule["source"], found.same_named) == ("amount_minor", "amount", False)
    assert found.why == "the same amount, both in cents (minor units)"
