"""The bench's senders: concurrent HTTP clients in the bench process, on one event loop.

Requests are built before sending starts (JSON and signatures cost nothing while measuring).
Each of `senders` clients takes the next request as soon as its last one is answered: as fast as
the hub accepts them, or with `rate` at that many events a second in total, each request at its
own slot; then an event's latency counts from its slot, not from when a client got round to it,
so a hub that falls behind is not flattered by senders that wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp

try:
    import uvloop
except ImportError:  # the standard event loop sends too, with more CPU per request
    uvloop = None


@dataclass(frozen=True)
class Request:
    numbers: tuple[int, ...]  # the events it carries
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Sent:
    sent_at: dict[int, float] = field(default_factory=dict)  # event -> time.time() it was (due to be) sent
    acked: set[int] = field(default_factory=set)  # answered 202
    rejected: list[str] = field(default_factory=list)  # "<status>: <error>" of each other answer
    seconds: float = 0.0  # first request to last answer
    behind_s: float = 0.0  # with a rate: the most a request was sent after its slot


def send(
    requests: list[Request], *, port: int, senders: int, rate: float | None = None, timeout: float = 120
) -> Sent:
    """Send every request to the hub on 127.0.0.1:`port`; `rate` in events a second, or None."""
    runner = asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None)
    with runner:
        return runner.run(_send(requests, port=port, senders=senders, rate=rate, timeout=timeout))


async def _send(
    requests: list[Request], *, port: int, senders: int, rate: float | None, timeout: float
) -> Sent:
    sent = Sent()
    slots = _slots(requests, rate)
    connector = aiohttp.TCPConnector(limit=senders)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", connector=connector, timeout=client_timeout
    ) as session:
        started_wall, started = time.time(), time.monotonic()

        async def client() -> None:
            for offset, request in slots:  # one iterator shared by every client
                if offset is None:
                    stamp = time.time()
                else:
                    wait = started + offset - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    else:
                        sent.behind_s = max(sent.behind_s, -wait)
                    stamp = started_wall + offset
                try:
                    async with session.post(
                        request.path, data=request.body, headers=request.headers
                    ) as answer:
                        await answer.read()
                        status, error = answer.status, ""
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, error = 0, f"{type(exc).__name__} {exc}"
                for number in request.numbers:
                    sent.sent_at[number] = stamp
                if status == 202:
                    sent.acked.update(request.numbers)
                else:
                    sent.rejected.append(f"{status}: {error}")

        await asyncio.gather(*(client() for _ in range(senders)))
        sent.seconds = time.monotonic() - started
    return sent


def _slots(requests: list[Request], rate: float | None) -> Iterator[tuple[float | None, Request]]:
    """Each request with its offset from the start in seconds (None: as soon as a client is free)."""
    events_before = 0
    for request in requests:
        yield (events_before / rate if rate else None), request
        events_before += len(request.numbers)
