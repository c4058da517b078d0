"""An auditor reads the audit log in the browser: filters it by action and sees who fixed a
record, the original beside the correction, and a mapping's rules side by side."""

import pytest
from playwright.sync_api import expect

from hub.services.mappings import mapping_version_save
from tests.history_helpers import order_1042_story

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_filters_the_audit_log_and_reads_the_diffs(fresh_sandbox, personas, sign_in):
    story = order_1042_story(fresh_sandbox, personas["ops"])
    mapping = story["invoices"].mapping
    rules = [{**rule, "transforms": [{"name": "lower"}]} if rule["target"] == "customer_email" else rule
             for rule in mapping.current_version.rules]  # fmt: skip
    mapping_version_save(mapping=mapping, rules=rules, actor=personas["admin"], comment="lower-case emails")

    page = sign_in(personas["auditor"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    table = page.locator("#audit-results")
    expect(table).to_contain_text("sign in")  # the auditor's own sign-in, newest first

    page.get_by_label("Action").select_option("replay")  # the filter applies on change
    expect(table.get_by_role("row").filter(has_text="oscar-ops")).to_have_count(1)
    expect(table).to_contain_text("typo in the email")
    expect(table.locator(".side-by-side > div").first).to_contain_text('"email": "not an email"')
    expect(table.locator(".side-by-side > div").last).to_contain_text('"email": "buyer1043@example.com"')

    page.get_by_label("Action").select_option("save")
    page.get_by_label("Who").select_option("alice-admin")
    rule = table.get_by_role("row").filter(has_text="customer_email").last
    expect(rule.locator("td.before")).to_have_text("customer_email ← customer.email")
    expect(rule.locator("td.after")).to_have_text("customer_email ← customer.email, then Lower case")
