"""Waking workers without a task per event, and telling them to stop.

One django-q2 task drains many deliveries. At most one drain at a time stays on when the
queue runs dry (the lingerer): it polls for new work every few milliseconds and waits for
retries due within the next minute. Ingest asks for a drain only when no lingerer is alive,
and a drain that keeps finding full batches asks for a helper, so under load every worker
joins in, and when the load stops the helpers leave and one poller remains.

django-q2 (1.11) tells a worker nothing when its cluster stops. SIGTERM to the cluster's main
process makes the sentinel wait for every running task to end, however long a drain lingers;
SIGTERM to the whole process group kills the sentinel and the workers at once (their handler is
SIG_DFL), mid-batch. So each worker process watches for both itself (`worker_watch`): the drain
and the poll check `stop_requested()` between deliveries and pages, and sleep with
`wait_unless_stopped()`.
"""

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("hub.dispatch")
KICK_KEY = "hub:drain-kick"
LINGERER_KEY = "hub:drain-lingerer"
LINGERER_TTL = 3  # seconds; a killed lingerer is replaced after this
ENGINE_KEY = "hub:engine"
ENGINE_TTL = 5  # seconds; workers take over new work this long after the engine stops
# A process asks at most this often; a skipped ask is covered by the lingerer's polling.
LOCAL_KICK_INTERVAL = 0.25
STOP_CHECK_SECONDS = 0.2
_last_kick = 0.0
_last_engine_note = 0.0


def _enqueue_drain(*, always: bool = False) -> None:
    """Queue a drain unless one is already queued and not yet started."""
    if cache.add(KICK_KEY, "1", timeout=5) or always:
        from django_q.tasks import async_task

        async_task("hub.tasks.deliveries_drain", task_name="drain", q_options={"group": "drain"})


# Set when this process stores new work (or the engine's front door says it did): a drain in this
# process wakes at once instead of at its next poll.
_work_arrived = threading.Event()
_work_listeners: list = []


def on_work_stored(listener) -> None:
    """Also tell `listener()` each time this process stores new work (the engine's front door
    tells its delivering process)."""
    _work_listeners.append(listener)


def announce_work() -> None:
    """New work is waiting: wake a drain of this process (another process told us)."""
    _work_arrived.set()


def kick_workers() -> None:
    """New work arrived: make sure some drain will see it soon."""
    global _last_kick
    _work_arrived.set()
    for listener in _work_listeners:
        listener()
    now = time.monotonic()
    if now - _last_kick < min(LOCAL_KICK_INTERVAL, settings.HUB_DRAIN_LINGER_SECONDS / 2):
        return
    _last_kick = now
    if cache.get_many([LINGERER_KEY, ENGINE_KEY]):
        return  # a lingering drain, or the engine, polls for work already
    _enqueue_drain()


def engine_is_running() -> bool:
    """Whether an engine's drain said it is there within the last few seconds."""
    return bool(cache.get(ENGINE_KEY))


def engine_running() -> None:
    """The engine's drain says it is there (at most once a second): new work needs no task."""
    global _last_engine_note
    if time.monotonic() - _last_engine_note >= 1.0:
        cache.set(ENGINE_KEY, socket.gethostname(), timeout=ENGINE_TTL)
        _last_engine_note = time.monotonic()


def ask_for_help() -> None:
    """A drain found a full batch: one more worker may join."""
    _enqueue_drain()


def worker_ready() -> None:
    """A (re)started worker looks for work at once: deliveries a crashed worker left behind, and
    anything that arrived while no worker ran. Whatever a killed predecessor left in the cache
    (a queued kick that never ran) must not hold this drain back."""
    _enqueue_drain(always=True)


def drain_started() -> None:
    cache.delete(KICK_KEY)


def become_lingerer(name: str) -> bool:
    if cache.add(LINGERER_KEY, name, timeout=LINGERER_TTL):
        return True
    holder = cache.get(LINGERER_KEY)
    if holder and _gone(holder):
        # A lingerer killed on this machine would keep its key for LINGERER_TTL more seconds,
        # and a restarted worker's drain would leave, thinking someone still polls.
        cache.set(LINGERER_KEY, name, timeout=LINGERER_TTL)
        return True
    return False


def still_lingering() -> None:
    cache.touch(LINGERER_KEY, LINGERER_TTL)


def stop_lingering() -> None:
    cache.delete(LINGERER_KEY)


def _gone(worker_name: str) -> bool:
    """Whether a worker named `host:pid` was on this machine and no longer runs."""
    host, _, pid = worker_name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


# --- Stopping ---------------------------------------------------------------------------------

_stop = threading.Event()
# Set by the SIGTERM handler, which must not take a lock (Event.set does: a handler that runs
# while the same thread holds that lock would wait forever); the watcher thread passes it on.
_signalled = False
_busy = False


def stop_requested() -> bool:
    return _stop.is_set()


def wait_unless_stopped(seconds: float) -> bool:
    """Sleep up to `seconds`, waking as soon as a stop is requested; True if one was."""
    return _stop.wait(max(0.0, seconds))


def request_stop() -> None:
    _stop.set()
    _work_arrived.set()


def work_arrived() -> bool:
    """Whether this process stored new work since the last time it was asked."""
    if _work_arrived.is_set():
        _work_arrived.clear()
        return True
    return False


def wait_for_work(seconds: float) -> None:
    """Sleep up to `seconds`, waking as soon as this process stores new work or a stop is requested."""
    _work_arrived.wait(max(0.0, seconds))


def forget_stop() -> None:
    """Back to running (tests: the flag is per process)."""
    global _signalled
    _signalled = False
    _stop.clear()


def worker_watch() -> None:
    """In a qcluster worker process: stop on SIGTERM, or when the cluster starts stopping."""
    if multiprocessing.parent_process() is None:
        return  # a task run in-process (sync): not a cluster worker, leave the process alone
    signal.signal(signal.SIGTERM, _on_sigterm)
    sentinel = os.getppid()
    threading.Thread(target=_watch, args=(sentinel,), name="hub-stop-watch", daemon=True).start()


def task_started() -> None:
    global _busy
    _busy = True


def task_finished() -> None:
    """After a task: a worker told to stop by SIGTERM leaves now. Its sentinel is gone or will
    not send it more work, and a task it would take next would only return at once."""
    global _busy
    _busy = False
    if _signalled:
        raise SystemExit(0)


def _on_sigterm(signum, frame) -> None:
    global _signalled
    _signalled = True
    if not _busy:
        raise SystemExit(0)  # waiting for a task: nothing to hand back


def _watch(sentinel: int) -> None:
    from django_q.brokers import get_broker

    broker = get_broker()
    while not _stop.wait(STOP_CHECK_SECONDS):
        # The cluster's status is read only while a task runs: an idle worker gets django-q2's
        # own stop message (a STOP in its task queue).
        if _signalled or os.getppid() != sentinel or (_busy and _cluster_stopping(sentinel, broker)):
            log.info("worker %s: stop requested, handing back its work", os.getpid())
            request_stop()


def _cluster_stopping(sentinel: int, broker) -> bool:
    """Whether the sentinel has begun stopping its cluster, as it reports in its status."""
    from django_q.conf import Conf
    from django_q.status import Stat

    try:
        stats = Stat.get_all(broker=broker)
    except Exception as exc:  # the cache or broker is unreachable: no news, keep working
        log.warning("could not read the cluster status: %s", exc)
        return False
    return any(stat.sentinel == sentinel and stat.status == Conf.STOPPING for stat in stats)
