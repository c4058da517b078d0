"""The bench's figures: latencies from the target's receipts, CPU per event by role, and the
row each run appends to bench/RESULTS.md."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .processes import HUB_ROLES

RESULTS_HEADER = """\
# Benchmark results

One row per run of `manage.py bench`, appended by the command itself (`--no-record` skips it).

The machine has 2 cores and runs everything: the senders (the bench process), the hub's web
server and workers, PostgreSQL, Redis and the target all share them. Events/s and latency move
with whatever else runs there; CPU per event moves much less, so compare runs by both, and read
the load average before the run (another job on the machine shows there).

- **date**: UTC, when the run ended. **commit**: `git rev-parse --short HEAD` of the checkout
  that ran, `+dirty` when tracked files differed from it.
- **db**: the hub's database. **mode**: one signed webhook per event or the batch API, N events
  a request; then the options: senders, target (`bench` = the lean aiohttp target of
  hub/management/benchkit/target.py, answering after the latency shown; `sandbox` = the inventory
  sandbox; `faulty` = the fault-injection target), `rate` = a steady rate in events/s instead of
  as fast as possible, `drain` = N events through the batch API while delivery runs.
- **events/s**: events delivered / (first send to last receipt at the target).
- **p50 / p95 / p99**: ms from an event's send (its slot, with a rate) to its arrival at the target.
- **lost / dup**: acknowledged events the target never got / extra copies it got.
- **hub CPU ms/event**: utime+stime, children included, of web + workers + engine + database
  (every PostgreSQL process on the machine; none on SQLite) over the measured phase (after the
  warm-up, until the last delivery finished), divided by events delivered. **split**: each role;
  after the `;`, outside the hub total: the senders, the target and the broker (Redis).
- **peak RSS / PSS MB**: the hub's processes (web, workers, engine, children included) summed,
  sampled every 0.2 s over the whole run; PSS (shared pages divided among the processes sharing
  them) at the peak RSS sample. With `drain`, RSS at the start, middle and end of the drain.
- **load before**: the 1-, 5- and 15-minute load averages just before the measured phase.

| date (UTC) | commit | db | mode | events | events/s | p50 | p95 | p99 | lost | dup | hub CPU ms/event | split (ms/event) | peak RSS / PSS MB | load before |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def latency_figures(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
    }


def receipts(received: list[dict], *, prefix: str) -> tuple[dict[int, float], dict[int, int]]:
    """For each benchmark event the target got: when it first arrived, and how many copies."""
    first_receipt: dict[int, float] = {}
    copies: dict[int, int] = {}
    for item in received:
        email = (item.get("record") or {}).get("email", "")
        if item.get("resource") != "accounts" or not email.startswith(prefix):
            continue
        n = int(email[len(prefix) :].split("@")[0])
        copies[n] = copies.get(n, 0) + 1
        first_receipt[n] = min(first_receipt.get(n, float("inf")), item["received_at"])
    return first_receipt, copies


def cpu_figures(cpu_seconds: dict[str, float], delivered: int) -> dict[str, Any]:
    """CPU ms per delivered event for each role, and the hub's total (its roles and database)."""
    if not delivered:
        return {"cpu_ms_per_event": {}, "hub_cpu_ms_per_event": None}
    per_event = {role: round(seconds * 1000 / delivered, 3) for role, seconds in cpu_seconds.items()}
    hub = sum(per_event.get(role, 0.0) for role in (*HUB_ROLES, "database"))
    return {"cpu_ms_per_event": per_event, "hub_cpu_ms_per_event": round(hub, 3)}


def mb(size: int) -> float:
    return round(size / 2**20, 1)


def summary(result: dict[str, Any]) -> list[str]:
    """The lines printed before the JSON: throughput and latency, where the CPU went, memory."""
    lines = [
        f"{result['events_per_s']} events/s end to end; latency p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms; lost {result['lost']}, "
        f"duplicates {result['duplicates']}"
    ]
    if result["hub_cpu_ms_per_event"] is not None:
        lines.append(
            f"CPU per delivered event: hub total {result['hub_cpu_ms_per_event']:.2f} ms "
            f"(web + workers + engine + database); {split(result['cpu_ms_per_event'])}"
        )
    lines.append(
        f"Peak memory of the hub's processes: RSS {result['peak_rss_mb']} MB, "
        f"PSS {result['peak_pss_mb']} MB at that sample"
    )
    if drain := result.get("drain_rss_mb"):
        lines.append(
            f"RSS while draining: start {drain['start']} MB, middle {drain['middle']} MB, "
            f"end {drain['end']} MB, most {drain['max']} MB"
        )
    return lines


def split(per_event: dict[str, float]) -> str:
    inside = [role for role in (*HUB_ROLES, "database") if role in per_event]
    outside = [role for role in per_event if role not in inside]
    text = ", ".join(f"{role} {per_event[role]:.2f}" for role in inside)
    if outside:
        text += "; " + ", ".join(f"{role} {per_event[role]:.2f}" for role in outside)
    return text


def results_row(result: dict[str, Any]) -> str:
    drain = result.get("drain_rss_mb")
    memory = f"{result['peak_rss_mb']:.0f} / {result['peak_pss_mb']:.0f}"
    if drain:
        memory += f"; drain {drain['start']:.0f} → {drain['middle']:.0f} → {drain['end']:.0f}"
    hub_cpu = result["hub_cpu_ms_per_event"]
    cells = [
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        result["commit"] + ("+dirty" if result.get("dirty") else "") or "?",
        result["database"],
        result["options"],
        f"{result['events']:,}",
        f"{result['events_per_s']:,.1f}",
        f"{result['p50_ms']:,.0f}",
        f"{result['p95_ms']:,.0f}",
        f"{result['p99_ms']:,.0f}",
        str(result["lost"]),
        str(result["duplicates"]),
        "–" if hub_cpu is None else f"{hub_cpu:.2f}",
        split(result["cpu_ms_per_event"]),
        memory,
        " ".join(f"{load:.2f}" for load in result["load_before"]),
    ]
    return "| " + " | ".join(cells) + " |\n"


def record(path: Path, result: dict[str, Any]) -> None:
    """Append the run's row to `path`, writing the header first if the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(RESULTS_HEADER)
    with path.open("a") as results:
        results.write(results_row(result))
