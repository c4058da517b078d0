"""Running the engine: two processes, so that answering webhooks and carrying out deliveries never
wait for each other's turn at the interpreter.

The front door (the process started) serves webhooks on its event loop and commits them in groups;
after each commit it writes a byte to a pipe. The delivering process (forked at start) drains for
as long as the engine runs, woken by that pipe the moment work is committed, and makes its calls
on an event loop of its own. Either ending ends the other: the front door stops its child on
SIGTERM, and the child stops when the pipe closes (its parent is gone, however it went)."""

import asyncio
import logging
import os
import signal
import threading

import uvloop
from aiohttp import web
from django.db import connections

from connectors.asynchttp import close_sessions
from hub.engine.calls import LoopCalls
from hub.engine.server import engine_app
from hub.pipeline.dispatch import (
    announce_work,
    engine_running,
    on_work_stored,
    request_stop,
    stop_requested,
    wait_for_work,
)
from hub.pipeline.drain import deliveries_drain

log = logging.getLogger("hub.engine")


def deliveries_forever(calls: LoopCalls) -> None:
    """Drain until stopped. A drain leaves when the queue is dry and nothing falls due within a
    minute; the next starts when the front door stores work, or after a second for work stored by
    other processes (the web server's webhooks, polls and replays)."""
    while not stop_requested():
        try:
            # No help from the task workers: on a small machine they would compete for the CPU,
            # and the engine's calls wait on its event loop, not on threads.
            deliveries_drain(calls=calls, in_engine=True)
        except Exception:  # never let one failure end deliveries while the front door stays open
            log.exception("the engine's drain failed; starting again in a second")
        engine_running()
        wait_for_work(1.0)


def _listen(wakeups: int) -> None:
    """In the delivering process: each byte from the front door is work committed; the end of
    the pipe is the front door gone."""
    while True:
        try:
            if not os.read(wakeups, 4096):
                break
        except InterruptedError:
            continue
        announce_work()
    log.info("engine: the front door is gone; stopping deliveries")
    request_stop()


def _tell(wakeups: int) -> None:
    try:
        os.write(wakeups, b".")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups the other side has not read yet: it will wake


async def deliver(wakeups: int) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_stop)
    threading.Thread(target=_listen, args=(wakeups,), name="hub-wakeups", daemon=True).start()
    delivering = threading.Thread(target=deliveries_forever, args=(LoopCalls(loop),), name="hub-deliveries")
    delivering.start()
    await loop.run_in_executor(None, delivering.join)
    await close_sessions()


async def serve(host: str, port: int, child: int) -> None:
    runner = web.AppRunner(engine_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=2048, reuse_address=True).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    log.info("engine: webhooks on http://%s:%s/hooks/<system>/, deliveries in process %s", host, port, child)
    await stopped.wait()
    log.info("engine: stopping; calls under way finish and are recorded")
    await runner.cleanup()  # answers the requests under way, commits their group
    os.kill(child, signal.SIGTERM)
    await loop.run_in_executor(None, os.waitpid, child, 0)


def engine_run(host: str, port: int) -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    connections.close_all()  # nothing the two processes would share
    child = os.fork()
    if child == 0:
        os.close(write_end)
        uvloop.run(deliver(read_end))
        os._exit(0)
    os.close(read_end)
    on_work_stored(lambda: _tell(write_end))
    uvloop.run(serve(host, port, child))
