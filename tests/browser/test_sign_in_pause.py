"""Too many wrong passwords: the browser shows the paused page, and even the right password waits."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_pauses_sign_in_after_too_many_wrong_passwords(page, live_server, personas):
    def try_password(password):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("oscar-ops")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        try_password(f"wrong-{n}")
        expect(page.get_by_role("alert")).to_contain_text("didn't match")
    try_password("wrong-last")
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    try_password(PASSWORD)
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Too many wrong passwords")
    expect(page.get_by_text("Try again in 15 minutes")).to_be_visible()
    page.get_by_role("link", name="Back to sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
