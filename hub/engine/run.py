"""Running the engine: the webhook front door on the event loop, deliveries on a thread of their
own that drains for as long as the engine runs, woken in process the moment ingest commits."""

import asyncio
import logging
import signal
import threading

import uvloop
from aiohttp import web

from connectors.asynchttp import close_sessions
from hub.engine.calls import LoopCalls
from hub.engine.server import engine_app
from hub.pipeline.dispatch import engine_running, request_stop, stop_requested, wait_for_work
from hub.pipeline.drain import deliveries_drain

log = logging.getLogger("hub.engine")


def deliveries_forever(calls: LoopCalls) -> None:
    """Drain until stopped. A drain leaves when the queue is dry and nothing falls due within a
    minute; the next starts when ingest here stores work, or after a second for work stored by
    other processes (the web server's webhooks, polls and replays also wake the task workers)."""
    while not stop_requested():
        try:
            # No help from the task workers: on a small machine they would compete for the CPU,
            # and the engine's calls wait on its event loop, not on threads.
            deliveries_drain(calls=calls, in_engine=True)
        except Exception:  # never let one failure end deliveries while the front door stays open
            log.exception("the engine's drain failed; starting again in a second")
            wait_for_work(1.0)
            continue
        engine_running()
        wait_for_work(1.0)


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(engine_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048, reuse_address=True).start()
    loop = asyncio.get_running_loop()
    delivering = threading.Thread(target=deliveries_forever, args=(LoopCalls(loop),), name="hub-deliveries")
    delivering.start()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    log.info("engine: webhooks on http://%s:%s/hooks/<system>/, deliveries running", host, port)
    await stopped.wait()
    log.info("engine: stopping; calls under way finish and are recorded")
    request_stop()
    await runner.cleanup()  # answers the requests under way, commits their group
    await loop.run_in_executor(None, delivering.join)
    await close_sessions()


def engine_run(host: str, port: int) -> None:
    uvloop.run(serve(host, port))
