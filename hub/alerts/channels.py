"""Where alert notifications go: a registry of channel kinds (kind -> class). A kind declares its
settings (the form shows one input per setting; secret ones are stored encrypted, write-only) and
sends a Notice, raising ChannelError in plain words when it cannot. Messages of a failure name the
host, never a URL's path or query, where chat tools keep their tokens."""

import hashlib
import hmac
import json
import secrets
import smtplib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import EmailValidator, URLValidator

from connectors.netpolicy import guarded_session, outbound_allowed, refusal

SIGNATURE_HEADER = "X-Hub-Signature-256"
WEBHOOK_TIMEOUT = (3.0, 5.0)  # connect, answer (seconds): a slow receiver must not hold evaluation


class ChannelError(Exception):
    """A notification that did not go out, with the reason in plain words (no secrets)."""


@dataclass(frozen=True)
class Notice:
    """What one notification says; each channel words it from these fields."""

    status: str  # firing, reminder, resolved, test
    flow: str
    rule: str  # the rule's sentence after the flow's name
    summary: str
    url: str
    at: datetime
    alert_id: int | None = None
    started_at: datetime | None = None

    HEADINGS: ClassVar[dict[str, str]] = {
        "firing": "FIRING",
        "reminder": "STILL FIRING",
        "resolved": "RESOLVED",
        "test": "TEST",
    }

    def text(self) -> str:
        """One line, as chat tools show it."""
        if self.status == "test":
            return f"[TEST] {self.summary} {self.url}".strip()
        return f"[{self.HEADINGS[self.status]}] {self.flow} {self.rule}: {self.summary} {self.url}".strip()

    def subject(self) -> str:
        if self.status == "test":
            return "[hub] Test notification"
        return f"[hub] {self.HEADINGS[self.status]}: {self.flow} {self.rule}"[:200]

    def body(self) -> str:
        lines = [self.text(), ""]
        if self.status != "test":
            lines += [f"Flow: {self.flow}", f"Rule: tell me when it {self.rule}", f"Now: {self.summary}"]
            if self.started_at:
                lines.append(f"Firing since: {self.started_at.isoformat(timespec='seconds')}")
        lines += [f"At: {self.at.isoformat(timespec='seconds')}", "", f"Open it: {self.url}"]
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """The webhook body: `text` for chat tools, the fields for programs."""
        return {
            "text": self.text(),
            "status": self.status,
            "flow": self.flow,
            "rule": self.rule,
            "summary": self.summary,
            "alert_id": self.alert_id,
            "url": self.url,
            "at": self.at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


@dataclass(frozen=True)
class Setting:
    """One input of a channel kind's form."""

    name: str
    label: str
    help: str = ""
    secret: bool = False  # stored encrypted; the form never shows it again
    required: bool = True
    input: str = "text"  # text, emails, url, password


class ChannelKind:
    label: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]]

    def __init__(self, settings: dict[str, Any], secrets: dict[str, Any]) -> None:
        self.config = settings or {}
        self.secrets = secrets or {}

    def send(self, notice: Notice) -> str:
        """Send it; return what happened in a few words, or raise ChannelError."""
        raise NotImplementedError(f"{type(self).__name__} must say how it sends")

    def destination(self) -> str:
        """Where it goes, as pages may show it (no secrets)."""
        raise NotImplementedError

    @classmethod
    def clean(cls, values: dict[str, str], *, stored: dict[str, Any]) -> tuple[dict, dict]:
        """The settings and secrets to store from the form's values (an empty secret keeps the
        stored one); raises ValidationError naming the setting."""
        raise NotImplementedError


class EmailChannel(ChannelKind):
    """Through Django's email backend: SMTP from the environment, the console in development."""

    label = "Email"
    settings = (Setting("to", "Send to", help="One or more addresses, separated by commas.", input="emails"),)

    def send(self, notice: Notice) -> str:
        to = list(self.config.get("to") or [])
        try:
            send_mail(notice.subject(), notice.body(), None, to, fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(
                f"the mail server did not take it: {type(exc).__name__}: {exc}"[:300]
            ) from None
        return f"emailed {', '.join(to)}"[:300]

    def destination(self) -> str:
        return ", ".join(self.config.get("to") or [])

    @classmethod
    def clean(cls, values, *, stored):
        addresses = [a.strip() for a in (values.get("to") or "").replace(";", ",").split(",") if a.strip()]
        if not addresses:
            raise ValidationError({"to": "Enter at least one email address."})
        check = EmailValidator()
        for address in addresses:
            try:
                check(address)
            except ValidationError:
                raise ValidationError({"to": f"“{address}” is not an email address."}) from None
        return {"to": addresses}, {}


class WebhookChannel(ChannelKind):
    """POST a JSON body chat tools accept ({"text": ...} plus the fields), signed with HMAC-SHA256
    of the body under the channel's own secret."""

    label = "Webhook (chat or any HTTP receiver)"
    settings = (
        Setting(
            "url",
            "Webhook URL",
            help="Kept encrypted and never shown again: chat tools put their token in it.",
            secret=True,
            input="url",
        ),
        Setting(
            "signing_secret",
            "Signing secret",
            help=f"The receiver can check the {SIGNATURE_HEADER} header (sha256=HMAC of the body). "
            "Leave empty to have one made (chat tools do not check it).",
            secret=True,
            required=False,
            input="password",
        ),
    )

    def host(self) -> str:
        return urlsplit(self.secrets.get("url", "")).hostname or "the receiver"

    def send(self, notice: Notice) -> str:
        body = json.dumps(notice.payload(), ensure_ascii=False).encode()
        signature = hmac.new(self.secrets["signing_secret"].encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "integration-hub-alerts",
            SIGNATURE_HEADER: f"sha256={signature}",
        }
        host = self.host()
        try:
            with guarded_session() as session:
                response = session.post(
                    self.secrets["url"],
                    data=body,
                    headers=headers,
                    timeout=WEBHOOK_TIMEOUT,
                    allow_redirects=False,
                )
        except requests.Timeout:
            raise ChannelError(f"{host} did not answer in time") from None
        except requests.RequestException as exc:
            raise ChannelError(refusal(exc) or f"{host} could not be reached") from None
        if not 200 <= response.status_code < 300:
            raise ChannelError(f"{host} answered HTTP {response.status_code}")
        return f"{host} answered HTTP {response.status_code}"

    def destination(self) -> str:
        parts = urlsplit(self.secrets.get("url", ""))
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…" if parts.netloc else "—"

    @classmethod
    def clean(cls, values, *, stored):
        url = (values.get("url") or "").strip() or stored.get("url", "")
        if not url:
            raise ValidationError({"url": "Enter the URL to post to."})
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise ValidationError({"url": "Enter an http:// or https:// URL."}) from None
        try:
            outbound_allowed(url)
        except ValidationError as exc:
            raise ValidationError({"url": exc.messages}) from None
        signing = (values.get("signing_secret") or "").strip() or stored.get("signing_secret")
        return {}, {"url": url, "signing_secret": signing or secrets.token_urlsafe(32)}


CHANNELS: dict[str, type[ChannelKind]] = {
    "email": EmailChannel,
    "webhook": WebhookChannel,
}


def validate_channel_kind(kind: str) -> None:
    if kind not in CHANNELS:
        raise ValidationError(f"unknown kind of channel {kind!r}; known: {', '.join(CHANNELS)}")
