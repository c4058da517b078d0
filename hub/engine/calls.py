"""Calls to targets on the engine's event loop: thousands may wait at once for the price of one
coroutine each, where a thread per call would cost a thread and `requests`' CPU per call.

Only the call itself runs on the loop. The steps before it (checks, plan, mapping, pace) and
after it (recording the answer, the breaker) run on the drain's thread, which may use the
database; a try that needs more than one plain call (a lookup before or after a create, an
OAuth token to fetch, a proxy to honour) runs whole on a call thread, as everywhere else."""

import asyncio
from collections.abc import Callable
from concurrent.futures import Future

from django.conf import settings

from connectors import asynchttp, ratelimit
from connectors.auth import AuthScheme
from connectors.registry import connector_class
from hub.models import Delivery
from hub.pipeline.attempt import PACE_WAIT_SECONDS, DeliveryTry, FlowCache, Outcome, Push, deferred_by_pace
from hub.pipeline.drain import ThreadCalls


def on_the_loop(delivery: Delivery, flows: FlowCache, *, proxied: bool = False) -> bool:
    """Whether this try is one plain call the event loop can make."""
    flow = flows.flow(delivery.flow_id)
    target = flow.target_system
    return (
        hasattr(connector_class(target.connector), "apush")
        and target.auth_scheme != AuthScheme.OAUTH2
        and not flow.target_model.lookup_field
        and not delivery.maybe_sent
        and not proxied
    )


def _done(outcome: Outcome) -> Future:
    future: Future = Future()
    future.set_result(outcome)
    return future


def _result(future: Future) -> Outcome:
    return future.result()


async def _send(push: Push, wait: float):
    if wait > 0:
        await asyncio.sleep(wait)  # the slot the pace reserved
    return await push.connector.apush(**push.arguments())


class LoopCalls:
    """`DeliveryRun`'s calls, made on `loop` where they can be (see the module's docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.threads = ThreadCalls()
        # A call waiting on the loop costs a coroutine, not a thread: many more may wait at once.
        # The call threads (HUB_MAX_IN_FLIGHT of them) take the tries that need one.
        self.max_in_flight = settings.HUB_ENGINE_MAX_IN_FLIGHT
        self.proxied = asynchttp.proxy_configured()  # read once: the environment is the process's

    def start(self, delivery: Delivery, flows: FlowCache) -> tuple[Future, Callable[[Future], Outcome]]:
        if not on_the_loop(delivery, flows, proxied=self.proxied):
            return self.threads.start(delivery, flows)
        attempt = DeliveryTry(delivery, flows)
        try:
            push = attempt.prepared()
            wait = 0.0
            if push is not None:
                wait = ratelimit.reserve(push.target, max_wait=PACE_WAIT_SECONDS)
                if wait is None:
                    deferred_by_pace(push.target, attempt.outcome)
                    push = None
                else:
                    push = attempt.before_sending(push)
        except Exception as exc:  # ended() turns it into the outcome, as delivery_attempt does
            return _done(attempt.ended(exc)), _result
        if push is None:
            return _done(attempt.ended()), _result
        call = asyncio.run_coroutine_threadsafe(_send(push, wait), self.loop)
        return call, lambda finished: attempt.ended_with(push, finished)
