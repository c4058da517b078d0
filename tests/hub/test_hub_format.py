"""The one way bodies are shown (hub/templatetags/hub_format.py): JSON indented even when it was
stored as a string, other text as it is, redaction untouched, a request or response summary as its
first line, folded headers and a readable body."""

import json

from django.template import Context, Template

from hub.templatetags.hub_format import readable, unpacked

ORDER = {"number": "1042", "lines": [{"sku": "A-1", "qty": 2}], "note": "x" * 300}


def render_exchange(summary, empty: str = "(none)") -> str:
    template = Template("{% load hub_format %}{% exchange summary empty=empty %}")
    return template.render(Context({"summary": summary, "empty": empty}))


def test_json_kept_as_a_string_is_shown_as_the_json_it_holds():
    summary = {"status": 201, "body": json.dumps(ORDER)}
    text = readable(summary)
    assert '"body": {\n    "number": "1042",' in text
    assert '\\"' not in text and '"qty": 2' in text
    assert unpacked(summary)["body"] == ORDER


def test_json_inside_a_string_inside_json_is_undone_at_every_level():
    twice = json.dumps({"payload": json.dumps({"id": 7})})
    assert unpacked(twice) == {"payload": {"id": 7}}
    assert readable(twice) == '{\n  "payload": {\n    "id": 7\n  }\n}'


def test_text_that_is_not_json_stays_text():
    assert readable("email is invalid") == "email is invalid"
    assert readable("<html><body>Bad gateway</body></html>") == "<html><body>Bad gateway</body></html>"
    cut_short = '{"number": "1042", "lines": [{"sku'
    assert readable(cut_short) == cut_short
    assert readable({"body": "[not json"}) == '{\n  "body": "[not json"\n}'
    assert readable("123") == "123"  # a number in a string is not unpacked


def test_nothing_reads_as_none_and_unicode_stays_unicode():
    assert readable(None) == readable("") == "(none)"
    assert readable("{}") == "{}" and readable([]) == "[]"
    assert readable({"name": "Zoë"}) == '{\n  "name": "Zoë"\n}'


def test_redaction_is_kept():
    summary = {"headers": {"Authorization": "[redacted]"}, "body": json.dumps({"token": "[redacted]"})}
    text = readable(summary)
    assert text.count("[redacted]") == 2


def test_a_request_shows_its_line_headers_folded_and_its_body_indented():
    html = render_exchange({
        "method": "POST", "url": "http://crm.example/api/deals?x=1",
        "headers": {"X-Api-Key": "[redacted]"}, "body": json.dumps(ORDER),
    })  # fmt: skip
    assert '<p class="mono small readable">POST http://crm.example/api/deals?x=1</p>' in html
    assert '<details><summary class="small">Headers</summary>' in html and "[redacted]" in html
    assert '<pre class="readable body">{\n  &quot;number&quot;: &quot;1042&quot;,' in html
    assert "\\&quot;" not in html


def test_a_response_shows_its_status_and_a_text_body_as_text():
    html = render_exchange({"status": 422, "headers": {}, "body": "email is invalid"})
    assert "HTTP 422" in html and '<pre class="readable body">email is invalid</pre>' in html


def test_an_empty_body_and_nothing_recorded_say_so():
    assert "(no body)" in render_exchange({"status": 204, "headers": {}, "body": ""})
    assert "(nothing was sent)" in render_exchange({}, empty="(nothing was sent)")
    assert "(nothing was sent)" in render_exchange(None, empty="(nothing was sent)")


def test_other_parts_of_a_summary_are_not_lost():
    html = render_exchange({"status": 200, "body": "{}", "error": "connection reset"})
    assert "connection reset" in html
