"""The bench's processes by role, and what each role costs: CPU seconds and memory.

A role is ``(name, argv, env)``: the target, the web server, the workers, and any process the
hub grows (an "engine" is one more entry in the list). A role's cost is that of its whole
process tree, so forked workers count with their parent.

CPU is utime + stime, children included: a process's own time plus that of the children it has
waited for (``cpu_times().children_*``), so a worker that exits during a run and a PostgreSQL
backend whose connection closed still count. Read before and after the measured phase, the
difference is what that phase cost.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

Role = tuple[str, list[str], dict[str, str]]

HUB_ROLES = ("web", "workers", "engine")  # the hub's own processes; "hub total" adds the database
DATABASE_PROCESSES = frozenset({"postgres", "postmaster"})
BROKER_PROCESSES = frozenset({"redis-server"})


class Fleet:
    """The processes the bench started, by role; each writes its output to <log_dir>/<role>.log."""

    def __init__(self, *, cwd: Path, log_dir: Path) -> None:
        self.cwd = cwd
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, roles: Iterable[Role]) -> None:
        for name, argv, env in roles:
            if name in self.children:
                raise ValueError(f"a second {name!r} role")
            with open(self.log_dir / f"{name}.log", "w") as log:
                self.children[name] = subprocess.Popen(
                    argv, env=env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
                )

    def stop(self) -> None:
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)

    def died(self) -> list[str]:
        """Roles whose process has exited."""
        return [name for name, child in self.children.items() if child.poll() is not None]

    def tree(self, name: str) -> list[psutil.Process]:
        """The role's process and its descendants, as they are now."""
        return self.trees([name])

    def hub_processes(self) -> list[psutil.Process]:
        return self.trees(HUB_ROLES)

    def trees(self, names: Iterable[str]) -> list[psutil.Process]:
        """The processes of the roles named and their descendants, from one pass over the
        machine's processes (psutil's children() makes one pass for each process asked)."""
        roots = [self.children[name].pid for name in names if name in self.children]
        if not roots:
            return []
        kids: dict[int, list[psutil.Process]] = {}
        by_pid: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["ppid"]):
            by_pid[proc.pid] = proc
            kids.setdefault(proc.info["ppid"], []).append(proc)
        found, stack = [], [by_pid[pid] for pid in roots if pid in by_pid]
        while stack:
            proc = stack.pop()
            found.append(proc)
            stack.extend(kids.get(proc.pid, ()))
        return found


def cpu_seconds(processes: Iterable[psutil.Process], *, children: bool = True) -> float:
    """utime + stime of the processes, with that of the children each has waited for."""
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # exited between listing and reading: its parent now counts it
        total += times.user + times.system
        if children:
            total += times.children_user + times.children_system
    return total


def processes_named(names: frozenset[str]) -> list[psutil.Process]:
    """Every process on the machine whose name is one of `names`."""
    return [proc for proc in psutil.process_iter(["name"]) if proc.info["name"] in names]


def cpu_readers(
    fleet: Fleet, *, database: bool, broker: bool, sampler: MemorySampler | None = None
) -> dict[str, Callable[[], float]]:
    """For each role, a function giving its CPU seconds so far.

    "database" is every PostgreSQL server process on the machine (none on SQLite, whose work is
    done inside web and workers); "broker" every Redis server; "sender" the bench process itself
    (its senders, and its polling of the database while it waits) but for the memory sampler's
    thread.
    """
    readers: dict[str, Callable[[], float]] = {
        name: (lambda name=name: cpu_seconds(fleet.tree(name))) for name in fleet.children
    }
    if database:
        readers["database"] = lambda: cpu_seconds(processes_named(DATABASE_PROCESSES))
    if broker:
        readers["broker"] = lambda: cpu_seconds(processes_named(BROKER_PROCESSES))
    me = psutil.Process()

    def sender() -> float:
        # Its own time only: the children it waits for are the roles, counted above.
        total = cpu_seconds([me], children=False)
        for thread in me.threads() if sampler is not None else ():
            if thread.id == sampler.thread_id:
                total -= thread.user_time + thread.system_time
        return total

    readers["sender"] = sender
    return readers


class CpuMeter:
    """CPU seconds each role spends between start() and stop()."""

    def __init__(self, readers: dict[str, Callable[[], float]]) -> None:
        self.readers = readers
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: read() for name, read in self.readers.items()}

    def stop(self) -> dict[str, float]:
        return {name: read() - self.before[name] for name, read in self.readers.items()}


@dataclass
class MemorySample:
    at: float  # time.monotonic()
    rss: int  # bytes, summed over the hub's processes


class MemorySampler:
    """Samples the summed RSS of the hub's processes every `interval` seconds in a background
    thread; at each new peak also their summed PSS, which counts a page shared by forked workers
    once (shared by n processes, 1/n in each) where RSS counts it in every one."""

    def __init__(self, fleet: Fleet, *, interval: float = 0.2, refresh: float = 1.0) -> None:
        self.fleet = fleet
        self.interval = interval
        self.refresh = refresh  # how often the list of processes is read again (it costs ~5 ms)
        self.thread_id: int | None = None  # its native id, so its CPU is not counted as the senders'
        self._processes: list[psutil.Process] = []
        self._listed_at = float("-inf")
        self.samples: list[MemorySample] = []
        self.peak_rss = 0
        self.peak_pss = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-memory")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        self.thread_id = threading.get_native_id()
        while not self._stopping.is_set():
            self.sample()
            self._stopping.wait(self.interval)

    def sample(self) -> None:
        if time.monotonic() - self._listed_at >= self.refresh:
            self._processes, self._listed_at = self.fleet.hub_processes(), time.monotonic()
        processes, rss = [], 0
        for proc in self._processes:
            try:
                rss += proc.memory_info().rss
                processes.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.samples.append(MemorySample(time.monotonic(), rss))
        if rss > self.peak_rss:
            self.peak_rss = rss
            self.peak_pss = sum(_pss(proc) for proc in processes)

    def between(self, start: float, end: float) -> list[MemorySample]:
        return [sample for sample in self.samples if start <= sample.at <= end]


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
