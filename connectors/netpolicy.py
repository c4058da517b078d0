"""Where the hub may connect: the outbound policy.

The hub calls addresses that admins type in (base URLs, token URLs, alert webhooks), so without a
policy anyone who may configure a system could make it call the cloud metadata service or the
company network for them. By default it refuses cloud metadata and link-local addresses, private
networks (carrier-grade NAT included), loopback, unspecified and multicast addresses;
HUB_OUTBOUND_ALLOW (keywords and CIDRs, comma separated) lets chosen ranges in, e.g. "loopback"
for the demo or "10.20.0.0/16" for systems on the company network. Metadata addresses are never
allowed.

The real guard is `GuardedAdapter`: it checks every address a name resolves to when the connection
is made (so DNS rebinding and redirects do not get round it) and never opens a socket to a refused
one. `url_problem` is the early check forms and pages make with the same words, without DNS.
"""

import ipaddress
import re
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address
type Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "HUB_OUTBOUND_ALLOW"


@dataclass(frozen=True)
class Range:
    """Addresses the hub refuses unless HUB_OUTBOUND_ALLOW names `keyword` (or a CIDR around them)."""

    keyword: str
    words: str  # "a loopback address (this machine)": what it is, for the admin
    networks: tuple[Network, ...]


def _networks(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


# Checked in this order: an address is what its first range says (metadata before link-local).
METADATA = Range(
    "",  # no keyword: never allowed
    "a cloud metadata address",
    _networks("169.254.169.254/32", "169.254.170.2/32", "fd00:ec2::254/128", "100.100.100.200/32"),
)
RANGES = (
    METADATA,
    Range("link-local", "a link-local address", _networks("169.254.0.0/16", "fe80::/10")),
    Range("loopback", "a loopback address (the hub's own machine)", _networks("127.0.0.0/8", "::1/128")),
    Range(
        "private",
        "a private network address",
        _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
    ),
    Range("unspecified", "an unspecified address", _networks("0.0.0.0/8", "::/128")),
    Range("multicast", "a multicast address", _networks("224.0.0.0/4", "ff00::/8")),
)
KEYWORDS = {r.keyword: r for r in RANGES if r.keyword}
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Policy:
    """What HUB_OUTBOUND_ALLOW lets in: keywords of RANGES and networks."""

    keywords: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    def problem(self, address: Address, *, name: str = "") -> str:
        """Why the hub may not connect to `address` (which `name` resolved to); "" when it may."""
        address = _embedded_ipv4(address) or address
        found = _range_of(address)
        if found is None:
            return ""
        if found is not METADATA and (
            found.keyword in self.keywords or any(address in net for net in self.networks)
        ):
            return ""
        subject = f"{name} resolves to {address}, " if name and name != str(address) else f"{address} is "
        if found is METADATA:
            return f"{subject}{found.words}; the hub never connects there."
        return (
            f"{subject}{found.words}; the hub connects there only when {SETTING} includes "
            f"{found.keyword} (or a range such as {_example_cidr(address)})."
        )


def policy_parse(items: list[str]) -> Policy:
    """The policy from HUB_OUTBOUND_ALLOW's items; ValueError in plain words for one it cannot read."""
    keywords, networks = set(), []
    for item in items:
        word = item.strip().lower()
        if word in KEYWORDS:
            keywords.add(word)
            continue
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise ValueError(
                f"{SETTING}: {item!r} is neither one of {', '.join(KEYWORDS)} nor an address range "
                "such as 10.20.0.0/16"
            ) from None
    return Policy(frozenset(keywords), tuple(networks))


@lru_cache(maxsize=8)
def _parsed(items: tuple[str, ...]) -> Policy:
    return policy_parse(list(items))


def current_policy() -> Policy:
    """The policy in force, read from the settings at each call (tests and `up` change them)."""
    return _parsed(tuple(getattr(settings, SETTING, ())))


def _range_of(address: Address) -> Range | None:
    return next((r for r in RANGES if any(address in net for net in r.networks)), None)


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches: ::ffff:127.0.0.1, 6to4 and NAT64 all lead there."""
    if address.version != 6:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _example_cidr(address: Address) -> str:
    return f"{address}/{32 if address.version == 4 else 128}"


def literal_address(host: str) -> Address | None:
    """The address a host names without DNS: 127.0.0.1, [::1], and the old spellings the system's
    resolver also accepts (2130706433, 0177.0.0.1, 0x7f.1, 127.1)."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-FxX.]+", host) and re.match(r"\d", host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def host_problem(host: str, *, resolve: bool = False) -> str:
    """Why the hub may not connect to `host`; with `resolve`, every address DNS gives is checked."""
    host = (host or "").strip().rstrip(".").lower()
    if not host:
        return ""
    policy = current_policy()
    if host in METADATA_NAMES:
        return f"{host} is {METADATA.words}; the hub never connects there."
    address = literal_address(host)
    if address is None and (host == "localhost" or host.endswith(".localhost")):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None:
        shown = _embedded_ipv4(address) or address
        return policy.problem(address).replace(f"{shown} is ", f"{host} is ", 1)
    if not resolve:
        return ""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ""  # unknown names are for the connection to report, in its own words
    for *_, sockaddr in found:
        if problem := policy.problem(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]), name=host):
            return problem
    return ""


def url_problem(url: str, *, resolve: bool = False) -> str:
    """Why the hub may not connect to `url`'s host ("" when it may, or when there is no host)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host_problem(host, resolve=resolve)


HOW_TO_ALLOW = (
    "Whoever runs the hub can allow it by adding that to {setting} in the hub's environment "
    "(comma separated) and restarting the hub."
)


def how_to_allow(problem: str) -> str:
    """The plain sentence that follows a refusal; none for addresses that are never allowed."""
    return "" if problem.endswith("never connects there.") else HOW_TO_ALLOW.format(setting=SETTING)


def refusal_in_words(problem: str) -> str:
    """A refusal and, when it can be, how to allow it: what forms and pages show."""
    return f"{problem} {how_to_allow(problem)}".strip()


def outbound_allowed(url: str) -> None:
    """Validator: a URL whose host the outbound policy allows (checked without DNS; the
    connection checks again with it)."""
    if problem := url_problem(url):
        raise ValidationError(refusal_in_words(problem), code="outbound_refused")


class OutboundRefused(NewConnectionError):
    """A connection the outbound policy refused before any socket was opened."""

    def __init__(self, conn, problem: str) -> None:
        super().__init__(conn, problem)
        self.problem = problem

    def __str__(self) -> str:
        return self.problem


def refusal(exc: BaseException | None) -> str:
    """The policy's words when `exc`, or an exception it was raised from, is a refused
    connection (requests wraps urllib3's errors, and we wrap requests'); "" otherwise."""
    while exc is not None:
        cause = exc.args[0] if exc.args else None
        for candidate in (exc, cause, getattr(cause, "reason", None)):
            if isinstance(candidate, OutboundRefused):
                return candidate.problem
        exc = exc.__cause__ or exc.__context__
    return ""


class _Guarded:
    """A urllib3 connection that resolves its host itself, checks every address against the
    policy, and connects only to allowed ones: the check and the connection use the same answer,
    so a name that changes what it resolves to between the two cannot slip through."""

    def _new_conn(self):  # noqa: ANN202 - urllib3's signature
        name = self._dns_host.strip("[]")
        try:
            found = socket.getaddrinfo(name, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        policy = current_policy()
        allowed, problems = [], []
        for *_, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            problem = policy.problem(address, name=name)
            (problems if problem else allowed).append(problem or sockaddr[0])
        if not allowed:
            raise OutboundRefused(self, problems[0] if problems else f"{name} has no address")
        dns_host = self._dns_host
        try:
            for index, address in enumerate(allowed):
                self._dns_host = address  # a literal address: urllib3 connects without asking DNS again
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError):
                    if index == len(allowed) - 1:
                        raise
        finally:
            self._dns_host = dns_host


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose every connection passes the outbound policy. With `only_to` (URLs), it
    also sends only to their hosts and ports (and to https on the same host): a redirect elsewhere
    would carry a system's credentials to a place nobody configured, so it is refused unsent."""

    def __init__(self, *args, only_to: list[str] | None = None, **kwargs) -> None:
        self.shown = None if only_to is None else sorted({_place(url)[1] for url in only_to})
        self.places = None if only_to is None else _places(only_to)
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}

    def send(self, request, *args, **kwargs):
        host, place = _place(request.url)
        problem = host_problem(host)  # early words for literal addresses, also through a proxy
        if not problem and self.places is not None and place not in self.places:
            problem = f"{place} is not where this system lives ({', '.join(self.shown)}); not sent there."
        if problem:
            raise requests.ConnectionError(OutboundRefused(None, problem), request=request)
        return super().send(request, *args, **kwargs)


def _place(url: str) -> tuple[str, str]:
    """A URL's host, and its host:port with the scheme's default port filled in."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        port = 0
    return host, f"{host}:{port}"


def places_of(urls: list[str]) -> frozenset[str]:
    """The host:port places a list of URLs sends to (the same host on https included)."""
    return _places(urls)


def _places(urls: list[str]) -> frozenset[str]:
    places = set()
    for url in urls:
        host, place = _place(url)
        places.update({place, f"{host}:443"})
    return frozenset(places)


def guarded_session(*, only_to: list[str] | None = None, **adapter_options) -> requests.Session:
    """A requests session whose every connection, redirects included, passes the outbound policy."""
    session = requests.Session()
    adapter = GuardedAdapter(only_to=only_to, **adapter_options)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def env_allowing_loopback(env: dict[str, str]) -> dict[str, str]:
    """`env` with loopback added to HUB_OUTBOUND_ALLOW: for the demo and benchmarks, whose
    sandbox systems listen on 127.0.0.1."""
    items = [item for item in env.get(SETTING, "").split(",") if item.strip()]
    if "loopback" not in {item.strip().lower() for item in items}:
        items.append("loopback")
    return {**env, SETTING: ",".join(items)}
