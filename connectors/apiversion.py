"""Where a system's API version goes on every call, the same for calls over `requests` and on the
event loop: in a header (its name), in the address (a `{version}` placeholder in the base URL or a
resource path, else the path segment that already looks like a version, such as /v1/ or
/2024-06/), or in a query parameter (its name)."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.db import models

from connectors.config import header_name, query_parameter

PLACEHOLDER = "{version}"
# A segment that names a version: v2, v2.1, 2024-06, 2024-06-01, v60.0.
VERSION_SEGMENT = re.compile(r"^(v\d+(\.\d+)*|\d{4}-\d{2}(-\d{2})?)$", re.IGNORECASE)


class VersionIn(models.TextChoices):
    HEADER = "header", "In a header"
    PATH = "path", "In the address (e.g. /v2/)"
    QUERY = "query", "In a query parameter"


class NoPlaceForVersion(ValueError):
    """The version belongs in the path, but the address has neither {version} nor a version part."""


@dataclass(frozen=True)
class VersionPlacement:
    """One system's API version and where its calls carry it."""

    version: str
    where: str = VersionIn.HEADER
    name: str = "X-Api-Version"

    @classmethod
    def of(cls, system) -> "VersionPlacement":
        return cls(system.api_version, system.api_version_in, system.api_version_name)

    def headers(self) -> dict[str, str]:
        if self.version and self.where == VersionIn.HEADER and self.name:
            return {self.name: self.version}
        return {}

    def params(self, url: str, params: dict | None) -> dict | None:
        """The query parameters with the version added, unless the address already names it (a
        server's own next-page link)."""
        if not self.version or self.where != VersionIn.QUERY or not self.name:
            return params
        if params and self.name in params:
            return params
        if any(key == self.name for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)):
            return params
        return {**(params or {}), self.name: self.version}

    def url(self, url: str) -> str:
        """The address with the version in its path: in place of {version}, else in place of the
        first segment that looks like a version. Raises NoPlaceForVersion when there is neither."""
        if self.where != VersionIn.PATH:
            return url.replace(PLACEHOLDER, self.version) if PLACEHOLDER in url else url
        parts = urlsplit(url)
        if PLACEHOLDER in parts.path:
            if not self.version:
                raise NoPlaceForVersion(
                    f"the address {url} has {PLACEHOLDER} but the system has no API version"
                )
            return urlunsplit(parts._replace(path=parts.path.replace(PLACEHOLDER, self.version)))
        if not self.version:
            return url
        segments = parts.path.split("/")
        for index, segment in enumerate(segments):
            if VERSION_SEGMENT.match(segment):
                segments[index] = self.version
                return urlunsplit(parts._replace(path="/".join(segments)))
        raise NoPlaceForVersion(
            f"the API version {self.version} goes in the address, but {parts.path or '/'} has neither "
            f"{PLACEHOLDER} nor a part such as /v1/ to put it in"
        )

    def address(self, base_url: str, path: str) -> str:
        """The full address a call to `path` on `base_url` goes to, the version placed."""
        url = self.url(base_url.rstrip("/") + "/" + path.lstrip("/") if path else base_url)
        if params := self.params(url, None):
            url += ("&" if "?" in url else "?") + urlencode(params)
        return url

    def in_words(self) -> str:
        """Where the version goes, for people: "sent as the X-Api-Version header"."""
        if not self.version:
            return "no API version is set"
        if self.where == VersionIn.PATH:
            return f"version {self.version} is put in the address (e.g. /{self.version}/)"
        if self.where == VersionIn.QUERY:
            return f"version {self.version} is sent as ?{self.name}={self.version}"
        return f"version {self.version} is sent in the {self.name} header"


def placement_problems(*, version: str, where: str, name: str, base_url: str) -> dict[str, str]:
    """What is wrong with a system's version settings, by field ("" problems: none)."""
    problems = {}
    if where in (VersionIn.HEADER, VersionIn.QUERY) and version and not name:
        what = "header" if where == VersionIn.HEADER else "query parameter"
        problems["api_version_name"] = f"Enter the name of the {what} that carries the version."
    if version and name and where in (VersionIn.HEADER, VersionIn.QUERY):
        try:
            (header_name if where == VersionIn.HEADER else query_parameter)(name)
        except ValidationError as exc:
            problems["api_version_name"] = " ".join(exc.messages)
    if PLACEHOLDER in base_url:
        parts = urlsplit(base_url.replace(PLACEHOLDER, "v0"))
        if "v0" in (parts.netloc or ""):
            problems["base_url"] = (
                f"{PLACEHOLDER} can only stand in the path, e.g. https://api.example.com/{PLACEHOLDER}."
            )
        elif where != VersionIn.PATH:
            problems["api_version_in"] = f"The base URL has {PLACEHOLDER}: choose “in the address”."
        elif not version:
            problems["api_version"] = f"Enter the API version: the base URL has {PLACEHOLDER}."
    return problems


def validate_placement(*, version: str, where: str, name: str, base_url: str) -> None:
    if problems := placement_problems(version=version, where=where, name=name, base_url=base_url):
        raise ValidationError(problems)
