"""Letters are grouped by cause: error class, target system and the reason's pattern (numbers,
ids and quoted values taken out, field names kept)."""

import pytest

from dlq.models import DeadLetter, reason_pattern
from dlq.selectors import inbox_causes
from tests.dlq.letter_helpers import letters_without_email, outcome_unknown_letter
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields
from tests.sandbox_helpers import hr_to_inventory_accounts


@pytest.mark.parametrize(
    ("reason", "pattern"),
    [
        ('POST /accounts answered 422: {"error": "email required", "id": "emp_000123"}',
         'POST /accounts answered 422: {"error": \'…\', "id": \'…\'}'),
        ('the mapped record does not fit Inventory · Account: "email" is required but missing',
         'the mapped record does not fit Inventory · Account: "email" is required but missing'),
        ("unknown sku sku-desk in lines[0].sku", "unknown sku sku-desk in lines[#].sku"),
        ("no account for Ann.Lee7@Example.com (order 1042, id 3f2a9c1e-1111-2222-3333-444455556666)",
         "no account for <email> (order #, id <id>)"),
        ("connection to 127.0.0.1:8103   refused\n after 8 tries", "connection to # refused after # tries"),
        ("value 'Ann Lee' is not allowed", "value '…' is not allowed"),
    ],
)  # fmt: skip
def test_it_takes_what_varies_per_record_out_of_the_reason(reason, pattern):
    assert reason_pattern(reason) == pattern


def test_it_leaves_out_the_error_description_the_page_shows_beside_it():
    reason = "The system rejected the record (4xx).: POST /accounts answered 422: email invalid"
    assert reason_pattern(reason, "rejected") == "POST /accounts answered 422: email invalid"
    assert (
        reason_pattern("gave up after 8 attempts: timed out", "timeout")
        == "gave up after # attempts: timed out"
    )


def test_two_records_failing_the_same_way_share_a_pattern():
    one = reason_pattern('POST /accounts for emp_1 answered 500 after 2.5 s: "Ann Lee1"')
    two = reason_pattern('POST /accounts for emp_22 answered 500 after 10.1 s: "Bo Chen22"')
    assert one == two


@pytest.mark.django_db(transaction=True)
def test_it_groups_open_letters_by_class_target_and_pattern_across_flows(fresh_sandbox):
    flow = hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
    letters_without_email(flow, range(1, 6))
    for n in (6, 7):
        outcome_unknown_letter(flow, n)
    # A second flow to the same target system: its letters of the same cause join the group.
    other = flow_with_mapping(
        source_model=model_with_fields(SystemFactory(), "Person", "/people", "id! email"),
        target_model=flow.target_model, rules=[{"target": "email", "source": "email"}], name="People",
    )  # fmt: skip
    letter = DeadLetter.objects.filter(error_class="contract_violation").first()
    DeadLetter.objects.create(
        delivery=letter.delivery, flow=other, error_class=letter.error_class, reason=letter.reason,
        pattern=letter.pattern, record_key="p_1",
    )  # fmt: skip
    DeadLetter.objects.filter(record_key="emp_5").update(
        resolution="discarded", resolved_at=letter.created_at
    )

    causes, total = inbox_causes(DeadLetter.objects.all())
    assert total == 2
    assert [(c.error_class, c.target_name, c.count) for c in causes] == [
        ("contract_violation", "Inventory", 5),  # 4 open of the first flow, 1 of the second
        ("outcome_unknown", "Inventory", 2),
    ]
    assert sorted(causes[0].flows) == sorted([flow.name, "People"])
    assert causes[0].pattern.endswith('but "email" is required')
    only_first, _ = inbox_causes(DeadLetter.objects.matching(flow=flow.pk))
    assert [c.count for c in only_first] == [4, 2]
