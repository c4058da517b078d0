"""What a target says about its own end: the `Deprecation` (RFC 9745), `Sunset` (RFC 8594), `Link`
(rel="deprecation" / rel="sunset") and `Warning` headers of its answers, read into a notice, and
the latest notice kept per system, method and path (connectors.models.ApiDeprecation, written by
connectors.services.deprecations_record).

Reading is a plain function that never raises: a value it cannot read is left out."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SUNSET_SOON_DAYS = 30  # a switch-off closer than this is urgent (the page, the default alert rule)
WARNING_CHARS = 300
LINK_CHARS = 500

_WARNING = re.compile(r'(\d{3})\s+\S+\s+"((?:[^"\\]|\\.)*)"')
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^,;]+)*)")
_REL = re.compile(r'\brel\s*=\s*(?:"([^"]*)"|([^\s;,]+))', re.IGNORECASE)


@dataclass(frozen=True)
class DeprecationNotice:
    """What one answer said: deprecated (since when, if it said), switched off when, where to read."""

    deprecated: bool = False
    deprecated_since: datetime | None = None
    sunset_at: datetime | None = None
    link: str = ""
    sunset_link: str = ""
    warning: str = ""


def deprecation_notice(headers: Mapping[str, str]) -> DeprecationNotice | None:
    """The notice in an answer's headers, None when they say nothing about deprecation."""
    deprecated, since = _deprecation(_header(headers, "Deprecation"))
    sunset_at = _http_date(_header(headers, "Sunset"))
    links = _links(_header(headers, "Link"))
    warning = _warning(_header(headers, "Warning"))
    notice = DeprecationNotice(
        deprecated=deprecated,
        deprecated_since=since,
        sunset_at=sunset_at,
        link=links.get("deprecation", ""),
        sunset_link=links.get("sunset", ""),
        warning=warning,
    )
    return notice if (deprecated or sunset_at or warning) else None


def _header(headers: Mapping[str, str], name: str) -> str:
    """All values of a header joined with commas (aiohttp keeps repeats apart, requests joins them)."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return ", ".join(getall(name, []))
    return headers.get(name) or ""


def _deprecation(value: str) -> tuple[bool, datetime | None]:
    """RFC 9745 says `@<seconds since 1970>`; earlier drafts said `true` or an HTTP date."""
    value = value.strip()
    if not value:
        return False, None
    if value.lower() == "true":
        return True, None
    if value.startswith("@"):
        try:
            return True, datetime.fromtimestamp(int(value[1:]), tz=UTC)
        except (ValueError, OverflowError, OSError):
            return False, None
    since = _http_date(value)
    return since is not None, since


def _http_date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _links(value: str) -> dict[str, str]:
    """The first http(s) link for each of the relations "deprecation" and "sunset"."""
    found: dict[str, str] = {}
    for url, params in _LINK.findall(value):
        url = url.strip()
        if not url.lower().startswith(("https://", "http://")) or len(url) > LINK_CHARS:
            continue  # shown as a link on a page: nothing but a web address
        rel = _REL.search(params)
        for name in (rel.group(1) or rel.group(2)).lower().split() if rel else ():
            if name in ("deprecation", "sunset"):
                found.setdefault(name, url)
    return found


def _warning(value: str) -> str:
    texts = [text.replace('\\"', '"').strip() for _code, text in _WARNING.findall(value)]
    return "; ".join(t for t in texts if t)[:WARNING_CHARS]
