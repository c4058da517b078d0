"""A dead letter's reason is one punctuation-clean message; every error class has a next step."""

import pytest

from connectors.base import ErrorClass, failure_reason
from dlq.models import without_description


@pytest.mark.parametrize(
    ("lead", "detail", "reason"),
    [
        ("The mapping could not produce a valid record.", "the mapped record does not fit Books · Invoice",
         "The mapping could not produce a valid record: the mapped record does not fit Books · Invoice"),
        ("gave up after 4 attempts", "POST /accounts answered 500: internal server error",
         "Gave up after 4 attempts: POST /accounts answered 500: internal server error"),
        ("The system rejected the record (4xx).", ": POST /accounts answered 422",
         "The system rejected the record (4xx): POST /accounts answered 422"),
        ("outcome unknown", "Outcome unknown: no answer in 10 s", "Outcome unknown: no answer in 10 s"),
        ("An unexpected error.", "", "An unexpected error."),
        ("", "no answer", "No answer"),
    ],
)  # fmt: skip
def test_it_joins_why_the_hub_stopped_and_what_was_said_into_one_clean_message(lead, detail, reason):
    assert failure_reason(lead, detail) == reason


@pytest.mark.parametrize(
    "reason",
    [
        "The system rejected the record (4xx): POST /accounts answered 422",
        "The system rejected the record (4xx).: POST /accounts answered 422",  # as stored before
    ],
)
def test_the_page_shows_the_detail_without_the_description_it_shows_beside_it(reason):
    assert without_description(reason, "rejected") == "POST /accounts answered 422"


def test_every_error_class_has_a_plain_description_and_a_next_step():
    for error_class in ErrorClass:
        assert error_class.description.endswith(".") and error_class.next_step.endswith(".")
        assert "_" not in error_class.next_step
