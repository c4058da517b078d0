"""The fault-injection suite's figures as the README's table.

    python -m tests.faults.report            # runs tests/faults, then prints the table
    python -m tests.faults.report --only var/faults   # prints the table of an earlier run

It runs the suite with the test command's settings (set DATABASE_URL and REDIS_URL as CI does),
each scenario writing its figures to a folder, and prints one row per scenario whether it passed
or not, then the suite's own verdict.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Rows in the order of the issue: each answer alone, then what goes wrong around the calls.
ORDER = [
    "429_seconds",
    "429_date",
    "503",
    "500",
    "timeout",
    "drop_before",
    "drop_after",
    "garbage",
    "empty_201",
    "no_id",
    "401",
    "422",
    "duplicate_webhooks",
    "sigkill",
    "database_restart",
    "two_clusters",
    "mix",
    "no_lookup",
]
HEADER = (
    "| fault | events | delivered | dead-lettered (class) | target records | duplicates |\n"
    "|---|---|---|---|---|---|"
)


def table(folder: Path) -> str:
    rows = []
    for path in sorted(
        folder.glob("*.json"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem)
    ):
        figures = json.loads(path.read_text())
        dead = ", ".join(f"{n} {cls}" for cls, n in sorted(figures["dead_lettered"].items())) or "0"
        if figures.get("unknown"):
            dead += f" ({figures['unknown']} outcome unknown)"
        fault = figures["fault"]
        if figures.get("unfinished"):
            fault += (
                f" — {figures['unfinished']} deliveries not finished in time (seconds: {figures['seconds']})"
            )
        refusals = figures.get("ingest_refusals") or {}
        if refusals:
            fault += "; ingest answered " + ", ".join(
                f"{n} × {status}" for status, n in sorted(refusals.items())
            )
        rows.append(
            f"| {fault} | {figures['events']} | {figures['delivered']} | {dead} | "
            f"{figures['target_records']} | {figures['duplicates']} |"
        )
    return "\n".join([HEADER, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report", description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=Path, help="print the table of figures already in this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "faults", help="where figures go")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, e.g. -k drop")
    args = parser.parse_args(argv)
    if args.only:
        print(table(args.only))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.json"):
        old.unlink()
    pid = os.getpid()
    env = {
        **os.environ,
        "HUB_FAULTS_FIGURES": str(args.out),
        "HUB_QUEUE_NAME": f"faults-{pid}",
        "HUB_CACHE_PREFIX": f"faults-{pid}",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/faults",
        *args.pytest_args,
    ]
    verdict = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    print(table(args.out))
    print()
    lines = verdict.stdout.strip().splitlines()
    # Why a scenario failed, not only that it did.
    for line in [line for line in lines if line.startswith(("FAILED", "E  "))][:20]:
        print(line[:400])
    print(lines[-1] if lines else verdict.stderr[-2000:])
    return verdict.returncode


if __name__ == "__main__":
    raise SystemExit(main())
