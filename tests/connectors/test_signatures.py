"""Each vendor template's webhook signature, checked against the vendor's own documented example
where one is published (Standard Webhooks and Svix, GitHub, Slack: secret, payload, time and
signature copied from their documentation), else against an independent computation with
hmac/hashlib as the vendor documents it (Stripe, Shopify, Intuit, Xero, WooCommerce, Meta, Zendesk); and a
tampered body, a wrong secret and a stale time refused. Every template file has its case here."""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from connectors.models import SignatureEncoding, SignatureScheme, System
from connectors.signatures import SignatureError, signed_headers, verify_signature
from connectors.vendors import TEMPLATES_DIR, vendor_template


def vendor_system(template: str, secret: str, **fields) -> System:
    """An unsaved system set up the way its vendor template says."""
    webhook = vendor_template(template).data["webhook"]
    return System(
        name=template,
        signature_scheme=webhook["scheme"],
        signature_header=webhook["header"],
        signature_encoding=webhook.get("encoding", SignatureEncoding.HEX),
        signature_prefix=webhook.get("prefix", ""),
        webhook_secret={"secret": secret},
        **fields,
    )


# -- Standard Webhooks: the example of https://docs.svix.com/receiving/verifying-payloads/how-manual
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_HEADERS = {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TIMESTAMP), "webhook-signature": SW_SIGNATURE}

# -- GitHub: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# -- Slack: https://api.slack.com/authentication/verifying-requests-from-slack
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_HEADERS = {"X-Slack-Request-Timestamp": str(SLACK_TIMESTAMP), "X-Slack-Signature": SLACK_SIGNATURE}

# -- Stripe and Shopify: no published example with its signature, so computed here independently.
STRIPE_SECRET = "whsec_test_secret"
STRIPE_TIMESTAMP = 1492774577
STRIPE_BODY = b'{"id": "evt_1", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}'
STRIPE_SIGNATURE = hmac.new(
    STRIPE_SECRET.encode(), f"{STRIPE_TIMESTAMP}.".encode() + STRIPE_BODY, hashlib.sha256
).hexdigest()
STRIPE_HEADERS = {"Stripe-Signature": f"t={STRIPE_TIMESTAMP},v1={STRIPE_SIGNATURE}"}

SHOPIFY_SECRET = "shpss_0123456789abcdef"
SHOPIFY_BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'
SHOPIFY_SIGNATURE = base64.b64encode(
    hmac.new(SHOPIFY_SECRET.encode(), SHOPIFY_BODY, hashlib.sha256).digest()
).decode()


# -- The vendors that sign a plain HMAC-SHA256 of the body and publish no example signature: built
# here with hmac/hashlib as their documentation describes it.
def body_hmac(secret: str, body: bytes, *, base64_encoded: bool) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if base64_encoded else digest.hex()


# Intuit: intuit-signature, Base64 of HMAC-SHA256 of the body keyed with the app's Verifier Token.
INTUIT_SECRET = "f5b5b7b3-1a4e-4f7e-9b8c-verifier-token"
INTUIT_BODY = b'{"eventNotifications":[{"realmId":"1185883450","dataChangeEvent":{"entities":[{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2015-10-05T14:42:19-0700"}]}}]}'
# Xero: x-xero-signature, Base64 of HMAC-SHA256 of the body keyed with the webhook key.
XERO_SECRET = "Z6hMbgrMaOthvPq3jGl5HJ6h+6aSUOdqWgkNbD0kHYTpE1xsz3rBJ3mYWHm1y4oJf0WETNq2i0y3Fo4rxPr8kQ=="
XERO_BODY = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0MQPBWSVFXYXLDXYBEB"}'
# WooCommerce: X-WC-Webhook-Signature, Base64 of HMAC-SHA256 of the body keyed with the webhook's secret.
WOO_SECRET = "wc-webhook-secret"
WOO_BODY = b'{"id":727,"status":"processing","currency":"USD","total":"29.35"}'
# Meta (WhatsApp): X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body keyed with the App Secret>.
META_SECRET = "3f1c2e5a9b8d7c6e5f4a3b2c1d0e9f8a"
META_BODY = b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[]}]}'

# Zendesk: X-Zendesk-Webhook-Signature, Base64 of HMAC-SHA256 over the ISO time of
# X-Zendesk-Webhook-Signature-Timestamp followed by the body, keyed with the webhook's signing secret
# (the secret is the one Zendesk's documentation gives for test webhooks).
ZENDESK_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
ZENDESK_SENT_AT = "2021-07-25T10:00:00Z"
ZENDESK_TIME = 1627207200  # that moment in unix seconds
ZENDESK_BODY = b'{"type":"zen:event-type:ticket.created","id":"cbe4028c-7239-495d-b020-f22348516046","detail":{"id":"35436"}}'
ZENDESK_HEADERS = {
    "X-Zendesk-Webhook-Signature-Timestamp": ZENDESK_SENT_AT,
    "X-Zendesk-Webhook-Signature": base64.b64encode(
        hmac.new(ZENDESK_SECRET.encode(), ZENDESK_SENT_AT.encode() + ZENDESK_BODY, hashlib.sha256).digest()
    ).decode(),
}

# template, secret, body, headers, time of arrival
EXAMPLES = {
    "standard-webhooks": ("standard-webhooks", SW_SECRET, SW_BODY, SW_HEADERS, SW_TIMESTAMP + 10),
    "github": ("github", GITHUB_SECRET, GITHUB_BODY, {"X-Hub-Signature-256": GITHUB_SIGNATURE}, None),
    "slack": ("slack", SLACK_SECRET, SLACK_BODY, SLACK_HEADERS, SLACK_TIMESTAMP + 10),
    "stripe": ("stripe", STRIPE_SECRET, STRIPE_BODY, STRIPE_HEADERS, STRIPE_TIMESTAMP + 10),
    "shopify": ("shopify", SHOPIFY_SECRET, SHOPIFY_BODY, {"X-Shopify-Hmac-Sha256": SHOPIFY_SIGNATURE}, None),
    # Svix's own example, as Svix sends it: the same values with svix-* headers.
    "svix": (
        "svix",
        SW_SECRET,
        SW_BODY,
        {"svix-id": SW_ID, "svix-timestamp": str(SW_TIMESTAMP), "svix-signature": SW_SIGNATURE},
        SW_TIMESTAMP + 10,
    ),
    "quickbooks-online": (
        "quickbooks-online",
        INTUIT_SECRET,
        INTUIT_BODY,
        {"intuit-signature": body_hmac(INTUIT_SECRET, INTUIT_BODY, base64_encoded=True)},
        None,
    ),
    "xero": (
        "xero",
        XERO_SECRET,
        XERO_BODY,
        {"x-xero-signature": body_hmac(XERO_SECRET, XERO_BODY, base64_encoded=True)},
        None,
    ),
    "woocommerce": (
        "woocommerce",
        WOO_SECRET,
        WOO_BODY,
        {"X-WC-Webhook-Signature": body_hmac(WOO_SECRET, WOO_BODY, base64_encoded=True)},
        None,
    ),
    "zendesk": ("zendesk", ZENDESK_SECRET, ZENDESK_BODY, ZENDESK_HEADERS, ZENDESK_TIME + 10),
    "whatsapp-business": (
        "whatsapp-business",
        META_SECRET,
        META_BODY,
        {"X-Hub-Signature-256": "sha256=" + body_hmac(META_SECRET, META_BODY, base64_encoded=False)},
        None,
    ),
}
TIMESTAMPED = ["standard-webhooks", "svix", "slack", "stripe", "zendesk"]
# The vendors whose webhooks the hub cannot check, and why: their template declares no signature
# scheme, so a system set up from it starts with "not signed" left for the admin to decide.
UNSIGNED = {
    "bamboohr": "signs over the body and a separate timestamp header (X-BambooHR-Signature), not yet a scheme here",
    "hubspot": "signs over the method, full URL, body and time (X-HubSpot-Signature-v3), not yet a scheme here",
    "intercom": "signs with HMAC-SHA1 (X-Hub-Signature: sha1=), which the hub does not accept",
    "paypal": "signs with a certificate (PAYPAL-TRANSMISSION-SIG), checked by calling PayPal's API",
    "salesforce": "outbound messages are SOAP, authenticated by the org's certificate and IP ranges",
}
TEMPLATES = sorted(p.stem for p in TEMPLATES_DIR.glob("*.json"))


@pytest.mark.parametrize("vendor", TEMPLATES)
def test_every_template_has_its_signature_case(vendor):
    """A new template file fails here until its signature is proved against an example, or its
    lack of one is explained."""
    declares = "webhook" in vendor_template(vendor).data
    if declares:
        assert vendor in EXAMPLES, f"add the sender's documented example for {vendor} to EXAMPLES"
        assert vendor not in UNSIGNED
    else:
        assert vendor in UNSIGNED, f"say in UNSIGNED why {vendor}'s webhooks cannot be checked"
        assert vendor not in EXAMPLES
    if vendor in EXAMPLES:
        is_timestamped = vendor_template(vendor).data["webhook"]["scheme"] != SignatureScheme.HMAC_SHA256
        assert is_timestamped == (vendor in TIMESTAMPED)


@pytest.mark.parametrize("vendor", EXAMPLES)
def test_the_vendors_example_passes(vendor):
    template, secret, body, headers, now = EXAMPLES[vendor]
    verify_signature(vendor_system(template, secret), body, headers, now=now)


@pytest.mark.parametrize("vendor", EXAMPLES)
def test_a_tampered_body_is_refused(vendor):
    template, secret, body, headers, now = EXAMPLES[vendor]
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(vendor_system(template, secret), body[:-1] + bytes([body[-1] ^ 1]), headers, now=now)


@pytest.mark.parametrize("vendor", EXAMPLES)
def test_a_wrong_secret_is_refused(vendor):
    template, secret, body, headers, now = EXAMPLES[vendor]
    # Still well formed (Standard Webhooks secrets are Base64): only the key is different.
    other = (
        "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
        if secret.startswith("whsec_")
        else secret + "x"
    )
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(vendor_system(template, other), body, headers, now=now)


@pytest.mark.parametrize("vendor", TIMESTAMPED)
@pytest.mark.parametrize("late", [301, -301])
def test_a_stale_or_future_timestamp_is_refused(vendor, late):
    template, secret, body, headers, now = EXAMPLES[vendor]
    system = vendor_system(template, secret)
    assert system.signature_tolerance_seconds == 300
    with pytest.raises(SignatureError, match="stale signature"):
        verify_signature(system, body, headers, now=now - 10 + late)
    verify_signature(system, body, headers, now=now - 10 + (299 if late > 0 else -299))


def test_standard_webhooks_accepts_any_of_several_signatures_while_the_sender_rotates_its_secret():
    system = vendor_system("standard-webhooks", SW_SECRET)
    headers = {**SW_HEADERS, "webhook-signature": f"v1,bm90IGl0 v2,whatever {SW_SIGNATURE}"}
    verify_signature(system, SW_BODY, headers, now=SW_TIMESTAMP)


def test_standard_webhooks_refuses_a_changed_id():
    system = vendor_system("standard-webhooks", SW_SECRET)
    with pytest.raises(SignatureError, match="does not match the id, timestamp and body"):
        verify_signature(system, SW_BODY, {**SW_HEADERS, "webhook-id": "msg_other"}, now=SW_TIMESTAMP)


def test_svix_headers_follow_the_signature_header_name():
    system = vendor_system("svix", SW_SECRET)
    headers = {"svix-id": SW_ID, "svix-timestamp": str(SW_TIMESTAMP), "svix-signature": SW_SIGNATURE}
    verify_signature(system, SW_BODY, headers, now=SW_TIMESTAMP)


@pytest.mark.parametrize(
    "headers, message",
    [
        (
            {"webhook-timestamp": "1614265330", "webhook-signature": SW_SIGNATURE},
            "missing signature header webhook-id",
        ),
        (
            {"webhook-id": SW_ID, "webhook-signature": SW_SIGNATURE},
            "missing signature header webhook-timestamp",
        ),
        ({**SW_HEADERS, "webhook-timestamp": "soon"}, "no <unix time>"),
        ({**SW_HEADERS, "webhook-signature": "v2,abc"}, "no v1,<signature> entry"),
    ],
)
def test_standard_webhooks_says_what_is_missing(headers, message):
    with pytest.raises(SignatureError, match=message):
        verify_signature(vendor_system("standard-webhooks", SW_SECRET), SW_BODY, headers, now=SW_TIMESTAMP)


def test_a_secret_not_in_the_whsec_form_is_named():
    with pytest.raises(SignatureError, match="whsec_<Base64>"):
        verify_signature(
            vendor_system("standard-webhooks", "whsec_not base64!"), SW_BODY, SW_HEADERS, now=SW_TIMESTAMP
        )


def test_slack_needs_its_timestamp_header():
    headers = {"X-Slack-Signature": SLACK_SIGNATURE}
    with pytest.raises(SignatureError, match="missing signature header X-Slack-Request-Timestamp"):
        verify_signature(vendor_system("slack", SLACK_SECRET), SLACK_BODY, headers, now=SLACK_TIMESTAMP)


@pytest.mark.parametrize("scheme", [s for s in SignatureScheme if s != SignatureScheme.NONE])
def test_what_signed_headers_makes_passes_its_own_check(scheme):
    """The signer the tests, the bench and the sandbox use agrees with the verifier, for every scheme."""
    system = System(
        name="S",
        signature_scheme=scheme,
        signature_header="webhook-signature"
        if scheme == SignatureScheme.STANDARD_WEBHOOKS
        else "X-Signature",
        webhook_secret={"secret": SW_SECRET},
    )
    headers = signed_headers(system, b'{"id": 1}', timestamp=1_700_000_000)
    verify_signature(system, b'{"id": 1}', headers, now=1_700_000_000)
    with pytest.raises(SignatureError):
        verify_signature(system, b'{"id": 2}', headers, now=1_700_000_000)


def test_the_zendesk_time_matches_its_unix_seconds():
    assert datetime.fromisoformat(ZENDESK_SENT_AT) == datetime.fromtimestamp(ZENDESK_TIME, UTC)


@pytest.mark.parametrize(
    "sent_at, message",
    [
        ("", "missing signature header X-Zendesk-Webhook-Signature-Timestamp"),
        ("yesterday", "is not a time such as 2021-07-25T10:00:00Z"),
        ("2021-07-25T10:00:00", "has no time zone"),
    ],
)
def test_zendesk_says_what_is_wrong_with_its_time(sent_at, message):
    headers = {**ZENDESK_HEADERS, "X-Zendesk-Webhook-Signature-Timestamp": sent_at}
    with pytest.raises(SignatureError, match=message):
        verify_signature(vendor_system("zendesk", ZENDESK_SECRET), ZENDESK_BODY, headers, now=ZENDESK_TIME)
