"""Keeps secrets out of everything we store or show: attempts, deliveries, dead letters, audit
entries, logs, pages, API answers and exports. Every writer of text that may carry what a system
said or what we sent it goes through a `Redactor`.

A target may echo a secret in another form than we sent it: JSON-escaped (once, or twice when the
echo is JSON text inside JSON), with `\\/` for `/`, as Python writes it in an exception (`'a\\nb'`),
URL-encoded, or, for a username and password, as the base64 of a Basic header. Each secret is looked
for in all of those forms, with the hex digits of `%2f` and `\\u00e9` in either case."""

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from connectors.auth import held_secrets

if TYPE_CHECKING:
    from connectors.base import ConnectorError

REDACTED = "[redacted]"
MIN_LENGTH = 4  # shorter values are not secrets anyone could use, and would redact ordinary words
_HEX_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4})")


def secret_forms(secret: str) -> set[str]:
    """Every way `secret` may come back to us written."""
    escaped = {json.dumps(secret, ensure_ascii=ascii_only)[1:-1] for ascii_only in (True, False)}
    escaped |= {form.replace("/", "\\/") for form in escaped}
    escaped |= {
        json.dumps(form, ensure_ascii=ascii_only)[1:-1] for form in escaped for ascii_only in (True, False)
    }
    return {secret, repr(secret)[1:-1], quote(secret, safe=""), quote(secret), quote_plus(secret), *escaped}


def _pattern(form: str) -> str:
    """`form` as a regular expression in which `%2F` also matches `%2f`, and `\\u00E9` `\\u00e9`."""
    return "".join(
        f"(?i:{re.escape(part)})" if i % 2 else re.escape(part)
        for i, part in enumerate(_HEX_ESCAPE.split(form))
    )


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self._forms: set[str] = set()
        self._regex: re.Pattern | None = None
        self._longest = 0
        self.add(secrets)

    @classmethod
    def for_system(cls, system) -> "Redactor":
        """Everything secret about signing in to `system` or receiving its webhooks: the stored
        credentials, the signing secret, and what the hub derived from them (see auth)."""
        values = [v for v in (system.credentials or {}).values() if isinstance(v, str)]
        return cls([*values, system.secret, *held_secrets(system)])

    def add(self, secrets: Iterable[str]) -> "Redactor":
        """Also redact `secrets` (a token obtained since, the header values just signed with)."""
        new = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_LENGTH} - self.secrets
        if new:
            self.secrets |= new
            self._forms |= {form for secret in new for form in secret_forms(secret)}
            self._longest = max(len(form) for form in self._forms)
            self._regex = None
        return self

    def text(self, value: str, limit: int | None = None) -> str:
        """`value` with every form of every secret replaced. Cut to `limit` characters only after
        redacting, so a secret across the cut is never left half shown."""
        if limit is not None:
            value = value[: limit + self._longest]
        if self._forms:
            if self._regex is None:
                # Longest first: the alternation takes the first that matches, so a secret
                # containing another is replaced whole.
                ordered = sorted(self._forms, key=len, reverse=True)
                self._regex = re.compile("|".join(_pattern(form) for form in ordered))
            value = self._regex.sub(REDACTED, value)
        return value if limit is None else value[:limit]

    def data(self, value: Any) -> Any:
        """A JSON-like value (a request or response summary) with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value

    def headers(self, headers: dict[str, str], secret_names: set[str]) -> dict[str, str]:
        return {k: (REDACTED if k.lower() in secret_names else self.text(str(v))) for k, v in headers.items()}

    def error(self, exc: "ConnectorError") -> "ConnectorError":
        """`exc` with its message redacted (in place, so its traceback stays)."""
        exc.message = self.text(exc.message)
        exc.args = (exc.message,)
        return exc
