import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_signs_in_and_out(sign_in, personas, live_server):
    page = sign_in(personas["admin"])
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_it_tells_a_user_whose_password_is_wrong(page, live_server, personas):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice-admin")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
