"""Reading what a target's answer says about its own end: each header form, and bad values left
out without an error."""

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict
from requests.structures import CaseInsensitiveDict

from connectors.deprecation import DeprecationNotice, deprecation_notice


def test_it_reads_rfc_9745_deprecation_with_its_date():
    notice = deprecation_notice({"Deprecation": "@1688169599"})
    assert notice == DeprecationNotice(
        deprecated=True, deprecated_since=datetime(2023, 6, 30, 23, 59, 59, tzinfo=UTC)
    )


@pytest.mark.parametrize("value", ["true", "TRUE", " true "])
def test_it_reads_the_legacy_true(value):
    assert deprecation_notice({"Deprecation": value}) == DeprecationNotice(deprecated=True)


def test_it_reads_the_legacy_http_date():
    notice = deprecation_notice({"Deprecation": "Sun, 11 Nov 2026 23:59:59 GMT"})
    assert notice.deprecated and notice.deprecated_since == datetime(2026, 11, 11, 23, 59, 59, tzinfo=UTC)


def test_it_reads_the_sunset_date_and_both_links():
    notice = deprecation_notice(
        CaseInsensitiveDict(
            {
                "Sunset": "Mon, 01 Mar 2027 00:00:00 GMT",
                "Link": '<https://developer.example.com/v2-migration>; rel="deprecation"; type="text/html", '
                "<https://developer.example.com/sunset>;rel=sunset, <https://example.com/next>; rel=next",
            }
        )
    )
    assert notice.sunset_at == datetime(2027, 3, 1, tzinfo=UTC)
    assert not notice.deprecated
    assert notice.link == "https://developer.example.com/v2-migration"
    assert notice.sunset_link == "https://developer.example.com/sunset"


def test_it_reads_repeated_headers_as_aiohttp_keeps_them():
    headers = CIMultiDict(
        [
            ("Deprecation", "@1700000000"),
            ("Link", "<https://example.com/next>; rel=next"),
            ("Link", '<https://example.com/deprecated>; rel="deprecation"'),
            ("Warning", '299 - "first"'),
            ("Warning", '299 api.example.com "second \\"quoted\\"" "Sat, 01 Jan 2027 00:00:00 GMT"'),
        ]
    )
    notice = deprecation_notice(headers)
    assert notice.link == "https://example.com/deprecated"
    assert notice.warning == 'first; second "quoted"'


def test_a_warning_alone_is_a_notice():
    notice = deprecation_notice({"Warning": '299 - "/v1/contacts is deprecated, use /v2/contacts"'})
    assert notice == DeprecationNotice(warning="/v1/contacts is deprecated, use /v2/contacts")


def test_answers_that_say_nothing_give_no_notice():
    assert deprecation_notice({}) is None
    assert (
        deprecation_notice({"Content-Type": "application/json", "Link": '<https://x.example>; rel="next"'})
        is None
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Deprecation": "false"},
        {"Deprecation": "@soon"},
        {"Deprecation": "@99999999999999999999"},
        {"Deprecation": "next tuesday"},
        {"Sunset": "when we feel like it"},
        {"Sunset": ""},
        {"Warning": "299 no quotes here"},
        {"Warning": '"just text"'},
        {"Link": '<javascript:alert(1)>; rel="deprecation"'},
    ],
    ids=str,
)
def test_bad_values_are_left_out_without_an_error(headers):
    assert deprecation_notice(headers) is None


def test_a_bad_value_does_not_hide_a_good_one():
    notice = deprecation_notice(
        {
            "Deprecation": "@garbage",
            "Sunset": "Mon, 01 Mar 2027 00:00:00 GMT",
            "Link": '<javascript:alert(1)>; rel="sunset", <ftp://x>; rel=deprecation',
        }
    )
    assert notice == DeprecationNotice(sunset_at=datetime(2027, 3, 1, tzinfo=UTC))
