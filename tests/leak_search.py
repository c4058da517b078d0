"""Looking for secrets where people and machines can read them: every form a secret may take once
echoed, escaped or encoded, and the places to look (a raw dump of every table, the pages a
signed-in person can reach by following links, the API's answers). Written apart from
connectors/redaction.py on purpose: the test must not share the redactor's idea of a form."""

import base64
import json
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import quote, quote_plus, urljoin, urlsplit

from django.conf import settings
from django.db import connection
from django.utils.html import escape


def forms_of(secret: str) -> dict[str, str]:
    """Each way `secret` may be written in text we keep or show, by name."""
    ascii_json = json.dumps(secret)[1:-1]
    found = {
        "raw": secret,
        "json": ascii_json,
        "json-unicode": json.dumps(secret, ensure_ascii=False)[1:-1],
        "json-slash": ascii_json.replace("/", "\\/"),
        "json-twice": json.dumps(ascii_json)[1:-1],
        "json-twice-unicode": json.dumps(json.dumps(secret, ensure_ascii=False)[1:-1])[1:-1],
        "repr": repr(secret)[1:-1],
        "url": quote(secret, safe=""),
        "url-path": quote(secret),
        "url-plus": quote_plus(secret),
        "html": escape(secret),
        "html-json": escape(ascii_json),
        "base64": base64.b64encode(secret.encode()).decode().rstrip("="),
    }
    return {name: form for name, form in found.items() if len(form) >= 4}


def hits(secrets: dict[str, str], places: dict[str, str]) -> Counter:
    """(secret, form, place) -> how many times that form of that secret appears there."""
    table: Counter = Counter()
    for name, secret in secrets.items():
        for form_name, form in forms_of(secret).items():
            for place, text in places.items():
                if count := text.count(form):
                    table[(name, form_name, place)] += count
    return table


def hits_figure(table: Counter, secrets: dict[str, str], places: list[str]) -> str:
    """The table as text: one row per secret, one column per place, and the forms that were hit."""
    width = max(len(name) for name in secrets)
    lines = [f"{'secret':<{width}}  " + "  ".join(f"{p:>6}" for p in places) + "  forms found"]
    for name in secrets:
        counts = [sum(n for (s, _, p), n in table.items() if s == name and p == place) for place in places]
        forms = sorted({f for (s, f, _) in table if s == name})
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>6}" for c in counts) + "  " + ", ".join(forms))
    return "\n".join(lines)


def database_dump() -> str:
    """Every row of every table as the database keeps it (encrypted columns stay encrypted)."""
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                parts.append(f"{table}: " + " | ".join(_as_text(value) for value in row))
    return "\n".join(parts)


def _as_text(value) -> str:
    if isinstance(value, memoryview | bytes):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            if name in ("href", "hx-get") and value:
                self.links.append(value)


SKIPPED = ("/accounts/logout", "/django-admin/", "/" + settings.STATIC_URL.lstrip("/"), "/api/docs")


def crawl_pages(client, start: list[str], *, limit: int = 400, per_path: int = 3) -> dict[str, str]:
    """Every page reachable from `start` by following links (href and hx-get) with GET, as the
    signed-in client sees it: url -> text. At most `per_path` query variants of one path, so
    filters and page numbers do not multiply the walk."""
    seen: dict[str, str] = {}
    variants: Counter = Counter()
    queue = list(start)
    while queue and len(seen) < limit:
        url = queue.pop(0)
        parts = urlsplit(url)
        if (
            url in seen
            or parts.path.startswith(SKIPPED)
            or (parts.query and variants[parts.path] >= per_path)
        ):
            continue
        variants[parts.path] += bool(parts.query)
        response = client.get(url)
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        text = b"".join(response.streaming_content) if response.streaming else response.content
        seen[url] = text.decode("utf-8", "replace")
        if "html" not in response.get("Content-Type", ""):
            continue
        parser = _Links()
        parser.feed(seen[url])
        for link in parser.links:
            target = urlsplit(urljoin(f"http://testserver{url}", link))
            if target.scheme in ("http", "https") and target.netloc == "testserver":
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


def crawl_api(client, start: str = "/api/v1/", *, limit: int = 400) -> dict[str, str]:
    """Every API answer reachable from the root: list endpoints, their pages, and the detail of
    each listed row (its `url`, or the list URL plus its `id`)."""
    seen: dict[str, str] = {}
    queue = [start]
    while queue and len(seen) < limit:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code < 500, f"{url} answered {response.status_code}"
        seen[url] = response.content.decode("utf-8", "replace")
        try:
            body = json.loads(seen[url])
        except ValueError:
            continue
        for link in _api_links(body, base=url.split("?")[0]):
            queue.append(link)
    return seen


def _api_links(body, *, base: str) -> list[str]:
    found = []
    if isinstance(body, dict):
        for key, value in body.items():
            if isinstance(value, str) and re.match(r"^(http://testserver)?/api/v1/", value):
                found.append(value.removeprefix("http://testserver"))
            elif isinstance(value, dict | list) and key != "detail":
                found += _api_links(value, base=base)
        rows = body.get("results")
        if isinstance(rows, list) and base.endswith("/"):
            found += [f"{base}{row['id']}/" for row in rows if isinstance(row, dict) and "id" in row]
    elif isinstance(body, list):
        for item in body:
            found += _api_links(item, base=base)
    return found
