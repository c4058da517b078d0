"""The engine's calls on its event loop (aiohttp) name every answer and failure as the calls on
threads (requests) do: the same sandbox faults, sent both ways, give the same result."""

import asyncio
import socket

import pytest

from connectors import asynchttp
from connectors.base import ConnectorError
from connectors.registry import connector_for
from tests.sandbox_helpers import fault, sandbox_system

pytestmark = pytest.mark.django_db


def one_way(system, way: str, **push):
    """What push ("thread") or apush ("loop") gives: a PushResult or the ConnectorError."""

    async def on_loop():
        try:
            return await connector_for(system).apush(**push)
        finally:
            await asynchttp.close_sessions()  # the loop ends here; its pools go with it

    try:
        return connector_for(system).push(**push) if way == "thread" else asyncio.run(on_loop())
    except ConnectorError as exc:
        return exc


def both_ways(system, **push) -> tuple[object, object]:
    return one_way(system, "thread", **push), one_way(system, "loop", **push)


def create(n: int, **extra) -> dict:
    record = {"email": f"a{n}@example.com", "name": f"A {n}", "role": "staff"}
    return {
        "operation": "create",
        "resource": "/accounts",
        "record": record,
        "target_id": None,
        "idempotency_key": f"k{n}",
        **extra,
    }


def shape(result) -> tuple:
    if isinstance(result, ConnectorError):
        words = result.message.split(" after ")[0].split(" (")[0]  # durations and cause names differ
        return ("failed", result.error_class, result.status, result.retry_after is not None, words)
    return ("done", result.status, bool(result.target_id), result.exchange.status)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ("done", 201, True, 201)),
        ({"mode": "500"}, ("failed", "server_error")),
        ({"mode": "503"}, ("failed", "server_error")),
        ({"mode": "429"}, ("failed", "rate_limited")),
        ({"mode": "401"}, ("failed", "auth_failure")),
        ({"mode": "garbage"}, ("done", 200)),
        ({"mode": "drop"}, ("failed", "outcome_unknown")),
        ({"mode": "drop_after"}, ("failed", "outcome_unknown")),
        ({"mode": "slow", "delay": 1.5}, ("failed", "outcome_unknown")),
    ],
    ids=lambda value: str(value),
)
def test_a_create_ends_the_same_both_ways(fresh_sandbox, spec, expected):
    system = sandbox_system(fresh_sandbox, "inventory", read_timeout=0.7)
    results = []
    for n, way in enumerate(("thread", "loop")):
        if spec:
            fault(fresh_sandbox, "inventory", count=1, methods=["POST"], **spec)
        results.append(shape(one_way(system, way, **create(n))))
    sync, loop = results
    assert sync == loop
    assert sync[: len(expected)] == expected


def test_the_exchange_kept_is_the_same_and_redacted(fresh_sandbox):
    system = sandbox_system(fresh_sandbox, "inventory")
    on_thread = one_way(system, "thread", **create(1)).exchange
    on_loop = one_way(system, "loop", **create(2)).exchange
    assert {**on_loop.request_headers, "Idempotency-Key": "k"} == {
        **on_thread.request_headers,
        "Idempotency-Key": "k",
    }
    assert "[redacted]" in str(on_loop.request_headers) and "inv-demo-key" not in str(
        on_loop.request_summary()
    )
    assert on_loop.status == on_thread.status == 201
    assert on_loop.response_headers.keys() == on_thread.response_headers.keys()
    assert '"email": "a2@example.com"' in on_loop.request_body


def test_updates_and_deletes_end_the_same_both_ways(fresh_sandbox):
    system = sandbox_system(fresh_sandbox, "inventory")
    made = connector_for(system).push(**create(1))
    update = {**create(1), "operation": "update", "target_id": made.target_id, "idempotency_key": "u1"}
    assert shape(both_ways(system, **update)[0]) == shape(both_ways(system, **update)[1])
    delete = {**create(1), "operation": "delete", "target_id": made.target_id, "idempotency_key": "d1"}
    sync, loop = both_ways(system, **delete)  # the second finds it gone: the effect wanted
    assert shape(sync)[0] == shape(loop)[0] == "done", (sync, loop)
    missing = {**update, "target_id": "nobody", "idempotency_key": "u2"}
    assert shape(both_ways(system, **missing)[0]) == shape(both_ways(system, **missing)[1])


def test_an_unreachable_target_and_a_refused_address_are_named_the_same(fresh_sandbox, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    system = sandbox_system(fresh_sandbox, "inventory", base_url=f"http://127.0.0.1:{closed}")
    sync, loop = both_ways(system, **create(1))
    assert sync.error_class == loop.error_class == "unreachable"
    settings.HUB_OUTBOUND_ALLOW = []  # the default policy: loopback refused
    sync, loop = both_ways(system, **create(2))
    assert sync.error_class == loop.error_class == "outbound_refused"
    assert sync.message == loop.message
