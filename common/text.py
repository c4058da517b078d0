"""Free text typed into a form field that is read without a Django form (a reason, a note)."""

import unicodedata


def form_text(raw: str | None, *, limit: int) -> str:
    """`raw` trimmed to `limit` characters, without control characters other than line breaks and
    tabs: nobody types them on purpose, and PostgreSQL cannot store a NUL in text."""
    kept = "".join(c for c in (raw or "") if c in "\n\t" or unicodedata.category(c) != "Cc")
    return kept.strip()[:limit]
