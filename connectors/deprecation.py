"""What a target says about its own end: the `Deprecation` (RFC 9745), `Sunset` (RFC 8594), `Link`
(rel="deprecation" / rel="sunset") and `Warning` headers of its answers, read into a notice, and
the latest notice kept per system, method and path (connectors.models.ApiDeprecation).

Reading is a plain function that never raises: a value it cannot read is left out. Recording sits
on the delivery path, so a process remembers what it last wrote and writes again only when the
notice changes or a minute has passed (the count of answers seen meanwhile is carried over)."""

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from django.db.models import F

WRITE_AT_MOST_EVERY = timedelta(minutes=1)
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


# --------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------


@dataclass
class _Written:
    notice: DeprecationNotice
    at: datetime
    unwritten: int = 0  # answers seen since the last write


_written: dict[tuple[int, str, str], _Written] = {}
_written_lock = threading.Lock()


def deprecations_record(*, seen: list[tuple[int, str, str, DeprecationNotice]], now: datetime) -> int:
    """Keep the latest notice per (system id, method, path) from answers seen at `now`; returns the
    number of rows written. A notice already written in the last minute is only counted in memory."""
    from connectors.models import ApiDeprecation

    due: dict[tuple[int, str, str], tuple[DeprecationNotice, int]] = {}
    with _written_lock:
        for system_id, method, path, notice in seen:
            key = (system_id, method.upper(), path[:300])
            memo = _written.get(key)
            if memo and memo.notice == notice and now - memo.at < WRITE_AT_MOST_EVERY:
                memo.unwritten += 1
                continue
            count = (memo.unwritten if memo else 0) + due.get(key, (None, 0))[1] + 1
            due[key] = (notice, count)
            _written[key] = _Written(notice=notice, at=now)
    for (system_id, method, path), (notice, count) in due.items():
        fields = {
            "deprecated": notice.deprecated,
            "deprecated_since": notice.deprecated_since,
            "sunset_at": notice.sunset_at,
            "link": notice.link,
            "sunset_link": notice.sunset_link,
            "warning": notice.warning,
            "last_seen_at": now,
        }
        key = {"system_id": system_id, "method": method, "path": path}
        if not ApiDeprecation.objects.filter(**key).update(times_seen=F("times_seen") + count, **fields):
            ApiDeprecation.objects.get_or_create(
                **key, defaults={**fields, "first_seen_at": now, "times_seen": count}
            )
    return len(due)


def deprecations_forget() -> None:
    """Forget what this process wrote (tests, and after rows were deleted)."""
    with _written_lock:
        _written.clear()
