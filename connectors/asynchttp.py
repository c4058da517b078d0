"""The same calls as `requests`, on an event loop (aiohttp), for many calls in flight at once.

The engine sends its deliveries through this when a call needs nothing `requests` alone does (a
proxy, an OAuth token to fetch, a lookup): one keep-alive pool per system and event loop, every
connection checked against the outbound policy after DNS (a guarded resolver, and literal
addresses before sending), failures named as `connectors.http.transport_error` names them, and
answers read into the shape `HttpConnector` reads from a `requests.Response`.
"""

import asyncio
import ipaddress
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from connectors.base import ConnectorError, ErrorClass, Exchange
from connectors.netpolicy import current_policy, host_problem

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def proxy_configured() -> bool:
    """A proxy decides where calls go: the engine then leaves them to `requests`, which honours it."""
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


class Refused(OSError):
    """A connection the outbound policy refused: no socket was opened."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class GuardedResolver(AbstractResolver):
    """Resolves a name and keeps only the addresses the outbound policy allows, so the check and
    the connection use the same answer."""

    def __init__(self) -> None:
        self.resolver = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        found = await self.resolver.resolve(host, port, family)
        policy = current_policy()
        allowed, problems = [], []
        for result in found:
            problem = policy.problem(ipaddress.ip_address(result["host"].split("%", 1)[0]), name=host)
            (problems if problem else allowed).append(problem or result)
        if not allowed:
            raise Refused(problems[0] if problems else f"{host} has no address")
        return allowed

    async def close(self) -> None:
        await self.resolver.close()


@dataclass
class Answer:
    """What `HttpConnector` reads of an answer, as `requests.Response` offers it."""

    status_code: int
    headers: CIMultiDict
    content: bytes
    charset: str | None = None
    _text: str | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.content.decode(self.charset or "utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        return json.loads(self.content)  # a ValueError when it is not JSON, as requests raises


_sessions: dict[tuple, aiohttp.ClientSession] = {}


def session_for(system) -> aiohttp.ClientSession:
    """See _session_for; the answer is kept on the system instance while its loop and settings hold."""
    loop = asyncio.get_running_loop()
    held = system.__dict__.get("_aio_session")
    if held is not None and held[0] is loop and held[1] == system.updated_at and not held[2].closed:
        return held[2]
    session = _session_for(system)
    system.__dict__["_aio_session"] = (loop, system.updated_at, session)
    return session


def _session_for(system) -> aiohttp.ClientSession:
    """One keep-alive pool per system on the running loop, rebuilt when its settings change."""
    loop = asyncio.get_running_loop()
    key = (id(loop), system.pk, system.updated_at, tuple(system.outbound_urls()))
    session = _sessions.get(key)
    if session is None or session.closed:
        for stale in [k for k in _sessions if k[:2] == key[:2]]:
            loop.create_task(_sessions.pop(stale).close())
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(), limit=0, keepalive_timeout=30)
        session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": "integration-hub/1.0"}, trust_env=False
        )
        _sessions[key] = session
    return session


async def close_sessions() -> None:
    while _sessions:
        await _sessions.popitem()[1].close()


async def send(
    system, method: str, url: str, *, headers: dict[str, str], body: Any, params: dict | None = None
) -> Answer:
    """One request; the transport's failures are raised as they come (see `transport_error`)."""
    if problem := host_problem(aiohttp.client.URL(url).host or ""):
        raise Refused(problem)  # a literal address: aiohttp would not ask the resolver
    data = None if body is None else json.dumps(body, allow_nan=False).encode()
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=system.connect_timeout, sock_read=system.read_timeout
    )
    async with session_for(system).request(
        method, url, headers=headers, data=data, params=params, timeout=timeout, allow_redirects=False
    ) as response:
        content = await response.read()
        return Answer(response.status, CIMultiDict(response.headers), content, response.charset)


def transport_error(method: str, path: str, exc: BaseException, exchange: Exchange) -> ConnectorError:
    """A request that got no answer, named as connectors.http.transport_error names it for
    `requests`: a POST that may have been written before the answer was lost is "outcome unknown"."""
    problem = _refusal(exc)
    if problem:
        return ConnectorError(f"{method} {path}: {problem}", ErrorClass.OUTBOUND_REFUSED, exchange=exchange)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectorError(
            f"{method} {path} timed out after {exchange.duration_ms:.0f} ms",
            ErrorClass.TIMEOUT,
            exchange=exchange,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):  # no connection was made
        cause = type(exc.os_error).__name__ if exc.os_error else type(exc).__name__
        return ConnectorError(
            f"{method} {path}: connection failed ({cause})", ErrorClass.UNREACHABLE, exchange=exchange
        )
    timed_out = isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError))
    if method == "POST":
        how = "no answer in time" if timed_out else "the connection dropped"
        message = f"{method} {path}: sent, but {how} after {exchange.duration_ms:.0f} ms; the system may have taken it"
        return ConnectorError(message, ErrorClass.OUTCOME_UNKNOWN, exchange=exchange)
    if timed_out:
        return ConnectorError(
            f"{method} {path} timed out after {exchange.duration_ms:.0f} ms",
            ErrorClass.TIMEOUT,
            exchange=exchange,
        )
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return ConnectorError(
            f"{method} {path}: connection failed ({type(exc).__name__})",
            ErrorClass.UNREACHABLE,
            exchange=exchange,
        )
    return ConnectorError(f"{method} {path}: {exc}", ErrorClass.UNKNOWN, exchange=exchange)


def _refusal(exc: BaseException | None) -> str:
    while exc is not None:
        if isinstance(exc, Refused):
            return exc.problem
        os_error = getattr(exc, "os_error", None)
        if isinstance(os_error, Refused):
            return os_error.problem
        exc = exc.__cause__ or exc.__context__
    return ""
