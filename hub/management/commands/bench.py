"""End-to-end benchmark: webhooks (or batch API calls) in, records at a loopback target out.

Starts its own target, web server (gunicorn) and worker cluster (qcluster) on free loopback
ports, against the configured database; warms them up on uncounted events; pushes a bounded
number of events from concurrent senders, as fast as they are accepted or at a steady rate;
waits for every delivery to finish; and prints events/s, latency, the CPU each kind of process
spent per delivered event over that measured phase, and the hub's peak memory. The last line is
one JSON object; each run is also appended to bench/RESULTS.md. The pieces live in
hub/management/benchkit/.
"""

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from connectors.models import AuthScheme, SignatureScheme, System
from connectors.sandbox import DEMO_CREDENTIALS
from connectors.sandbox.faulty import DEFAULT_API_KEY as FAULTY_API_KEY
from connectors.sandbox.faulty import FAULTS
from connectors.signatures import sign
from hub.management.benchkit import report, roles
from hub.management.benchkit.processes import CpuMeter, Fleet, MemorySampler, cpu_readers
from hub.management.benchkit.sender import Request, Sent, send
from hub.models import Attempt, Delivery, DeliveryStatus, Event, Flow, FlowState, Operation, RecordLink
from hub.roles import PUBLISHER, ensure_role_groups, grant_role
from hub.services.mappings import mapping_version_save
from hub.services.users import api_token_create
from mappings.models import DataModel, Field, Mapping

BENCH_SECRET = "bench-webhook-secret"
FAULTY_DEFAULT = "429=0.05,500=0.05,timeout=0.02,drop_after=0.05"
DRAIN_BATCH = 1000  # events a request while draining (the batch API's most)
MAX_EVENTS = 100_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise CommandError(f"{url} did not come up within {timeout:.0f}s")


def default_processes(ingest: str) -> tuple[int, int]:
    """(task workers, web workers): with the engine, what `manage.py up` runs by default, so the
    memory measured is the hub's as installed; with web ingest, enough for the web to take
    webhooks and the workers to deliver them."""
    return (1, 1) if ingest == "engine" else (2, 3)


class Command(BaseCommand):
    help = (
        "Benchmark ingest -> mapping -> delivery end to end on loopback; prints events/s, latency, "
        "CPU per event by kind of process and peak memory, and appends a row to bench/RESULTS.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=None, help="How many events to send (2000).")
        parser.add_argument("--senders", type=int, default=16, help="Concurrent senders.")
        parser.add_argument(
            "--batch", type=int, default=0, help="Send through the batch API, N events a request."
        )
        parser.add_argument(
            "--rate",
            type=float,
            default=None,
            help="Send at a steady R events/s in total, each at its slot (latency counts from the "
            "slot), instead of as fast as the hub accepts them.",
        )
        parser.add_argument(
            "--drain",
            type=int,
            default=None,
            metavar="N",
            help=f"Send N events through the batch API, {DRAIN_BATCH} a request, as fast as ingest "
            "takes them while delivery runs; reports RSS at the start, middle and end of the drain.",
        )
        parser.add_argument(
            "--target",
            choices=("bench", "sandbox"),
            default="bench",
            help="Deliver to the lean aiohttp bench target (default) or the inventory sandbox.",
        )
        parser.add_argument(
            "--target-latency-ms",
            type=float,
            default=0.0,
            help="The bench target answers each write after N ms (concurrent writes wait together).",
        )
        parser.add_argument(
            "--ingest",
            choices=("engine", "web"),
            default="engine",
            help="Where webhooks go: the engine (manage.py engine, the default) or the web server; "
            "with 'web' no engine runs and the workers deliver.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            help="django-q2 worker processes (default: 1 with the engine, as `manage.py up` runs; 2 with --ingest web).",
        )
        parser.add_argument(
            "--web-workers",
            type=int,
            help="gunicorn worker processes (default: 1 with the engine, as `manage.py up` runs; 3 with --ingest web).",
        )
        parser.add_argument(
            "--timeout", type=float, default=300, help="Give up waiting after this many seconds."
        )
        parser.add_argument(
            "--faulty",
            action="store_true",
            help="Deliver to a misbehaving target (connectors.sandbox.faulty) that ignores "
            "Idempotency-Key and injects the --faults; dead letters and duplicates must stay 0.",
        )
        parser.add_argument(
            "--faults",
            default=FAULTY_DEFAULT,
            help=f"With --faulty: shares of each fault, FAULT=SHARE,... (default {FAULTY_DEFAULT}).",
        )
        parser.add_argument(
            "--no-record", action="store_true", help="Do not append the run to bench/RESULTS.md."
        )

    def handle(self, *args, **options):
        workers, web_workers = default_processes(options["ingest"])
        options["workers"] = options["workers"] or workers
        options["web_workers"] = options["web_workers"] or web_workers
        self.check_options(options)
        self.faults = fault_shares(options["faults"]) if options["faulty"] else None
        events, batch, senders = options["events"], options["batch"], options["senders"]
        call_command("migrate", interactive=False, verbosity=0)
        run = uuid.uuid4().hex[:8]
        target_port, web_port = free_port(), free_port()
        # Webhooks go to the engine, the hub's front door for them; batches to the web server's API.
        engine_port = free_port() if options["ingest"] == "engine" else None
        ingest_port = engine_port if engine_port and not batch else web_port
        env = roles.child_env(run, options["workers"])
        log_dir = Path(settings.VAR_DIR) / "bench"
        log_dir.mkdir(exist_ok=True)
        fleet = Fleet(cwd=Path(settings.BASE_DIR), log_dir=log_dir)
        memory = MemorySampler(fleet)
        load_at_start = os.getloadavg()
        try:
            fleet.start([("target", self.target_argv(target_port, options), env)])
            target_url = f"http://127.0.0.1:{target_port}"
            wait_http(f"{target_url}/_control/state")
            source, flow, token = self.setup(target_url)
            fleet.start(
                roles.hub_roles(
                    base_dir=Path(settings.BASE_DIR),
                    web_port=web_port,
                    web_workers=options["web_workers"],
                    env=env,
                    engine_port=engine_port,
                )
            )
            memory.start()
            wait_http(f"http://127.0.0.1:{web_port}/healthz")
            if engine_port:
                wait_http(f"http://127.0.0.1:{engine_port}/healthz")
            # Warm every process up (imports, connections, caches) on events that are not counted.
            warmup = min(400, max(50, events // 10))
            self.stdout.write(f"Warming up with {warmup} events (not counted)...")
            warm = self.send(f"warm{run}", warmup, senders, batch, source, token, ingest_port)
            if not self.wait_finished(flow, len(warm.acked), options["timeout"], fleet):
                raise CommandError("the warm-up events were not delivered in time; see var/bench/*.log")
            self.analyze(source, flow)
            self.stdout.write(f"Sending {events} events: {self.describe(options)}...")
            cpu = CpuMeter(
                cpu_readers(
                    fleet,
                    database=connection.vendor == "postgresql",
                    broker=bool(settings.REDIS_URL),
                    sampler=memory,
                )
            )
            load_before = os.getloadavg()
            cpu.start()
            measured_from = time.monotonic()
            sent = self.send(run, events, senders, batch, source, token, ingest_port, rate=options["rate"])
            accepted = f"{len(sent.acked) / sent.seconds:.0f} events/s accepted" if sent.seconds else ""
            self.stdout.write(f"  sent in {sent.seconds:.1f}s ({accepted}); waiting for deliveries...")
            finished = self.wait_finished(flow, len(sent.acked), options["timeout"], fleet)
            cpu_seconds = cpu.stop()
            measured_to = time.monotonic()
            received = requests.get(f"{target_url}/_control/received", timeout=60).json()
            target_state = requests.get(f"{target_url}/_control/state", timeout=30).json()
        finally:
            memory.stop()
            fleet.stop()
        result = self.figures(run, sent, received, finished, flow, target_state, options)
        result.update(report.cpu_figures(cpu_seconds, result["delivered"]))
        result.update(
            peak_rss_mb=report.mb(memory.peak_rss),
            peak_pss_mb=report.mb(memory.peak_pss),
            load_at_start=[round(load, 2) for load in load_at_start],
            load_before=[round(load, 2) for load in load_before],
            **checkout(),
        )
        if options["drain"]:
            result["drain_rss_mb"] = drain_memory(memory, measured_from, measured_to)
        for line in report.summary(result):
            self.stdout.write(line)
        self.stdout.write(json.dumps(result))
        if not options["no_record"]:
            report.record(Path(settings.BASE_DIR) / "bench" / "RESULTS.md", result)
        self.check_faults(result, flow, finished)

    def check_options(self, options: dict) -> None:
        """Check the options and fill in those that follow from others (--drain sets the rest)."""
        if options["drain"] is not None:
            if options["events"] is not None or options["batch"] not in (0, DRAIN_BATCH) or options["rate"]:
                raise CommandError(
                    "--drain N sets the events and the batch; leave out --events, --batch, --rate"
                )
            options["events"], options["batch"] = options["drain"], DRAIN_BATCH
        if options["events"] is None:
            options["events"] = 2000
        if not 1 <= options["events"] <= MAX_EVENTS:
            raise CommandError(f"--events and --drain must be between 1 and {MAX_EVENTS}")
        if options["batch"] < 0 or options["batch"] > settings.HUB_MAX_BATCH_EVENTS:
            raise CommandError(f"--batch must be between 0 and {settings.HUB_MAX_BATCH_EVENTS}")
        if options["senders"] < 1:
            raise CommandError("--senders must be at least 1")
        if options["rate"] is not None and options["rate"] <= 0:
            raise CommandError("--rate must be more than 0 events/s")
        if options["target_latency_ms"] < 0:
            raise CommandError("--target-latency-ms must be 0 or more")
        if options["target_latency_ms"] and (options["faulty"] or options["target"] != "bench"):
            raise CommandError(
                "--target-latency-ms needs the bench target (not --faulty or --target sandbox)"
            )

    def describe(self, options: dict) -> str:
        """The run's mode and options, as the summary and bench/RESULTS.md show them."""
        batch = options["batch"]
        parts = [f"batch {batch}" if batch else "webhook per event", f"{options['senders']} senders"]
        if self.faults is not None:
            parts.append(f"faulty target ({options['faults']})")
        elif options["target"] == "sandbox":
            parts.append("sandbox target")
        else:
            latency = options["target_latency_ms"]
            parts.append(f"bench target, {latency:g} ms" if latency else "bench target")
        if options["rate"]:
            parts.append(f"rate {options['rate']:g}/s")
        if options["drain"]:
            parts.append(f"drain {options['drain']}")
        if (options["workers"], options["web_workers"]) != default_processes(options["ingest"]):
            parts.append(f"{options['workers']} workers, {options['web_workers']} web workers")
        return ", ".join(parts)

    def target_argv(self, port: int, options: dict) -> list[str]:
        """The target to deliver to: the bench target, the inventory sandbox, or the faulty target."""
        if self.faults is not None:
            return roles.faulty_target(port=port, shares=self.faults)
        if options["target"] == "sandbox":
            return roles.sandbox_target(port=port)
        api_key = DEMO_CREDENTIALS["inventory"]["api_key"]  # the key setup() gives the target system
        return roles.bench_target(port=port, latency_ms=options["target_latency_ms"], api_key=api_key)

    def setup(self, target_url: str) -> tuple[System, Flow, str]:
        """The bench's own source system, target system and flow (reused across runs). With
        --faulty, a source, target and flow of their own, the target model declaring the lookup
        by external id that lets the hub find out whether a create whose answer was lost arrived."""
        faulty = getattr(self, "faults", None) is not None
        suffix, prefix = (" (faulty target)", "bench-faulty-") if faulty else ("", "bench-")
        source, _ = System.objects.update_or_create(
            slug=f"{prefix}source",
            defaults=dict(
                name=f"Bench source{suffix}",
                signature_scheme=SignatureScheme.HMAC_SHA256,
                webhook_secret={"secret": BENCH_SECRET},
            ),
        )
        target, _ = System.objects.update_or_create(
            slug=f"{prefix}target",
            defaults=dict(
                name=f"Bench target{suffix}",
                base_url=target_url,
                auth_scheme=AuthScheme.API_KEY,
                auth_config={"header": "X-Api-Key"},
                credentials={"api_key": FAULTY_API_KEY} if faulty else dict(DEMO_CREDENTIALS["inventory"]),
                rate_limit_per_second=None,
                # The faulty target's late answers come after 1.5 s (roles.faulty_target): past this.
                **({"read_timeout": 1.0} if faulty else {}),
            ),
        )
        person, _ = DataModel.objects.get_or_create(
            system=source, name="Person", defaults={"resource_path": "/people"}
        )
        lookup = {"lookup_field": "external_id", "lookup_param": "external_id"} if faulty else {}
        account, created = DataModel.objects.get_or_create(
            system=target, name="Account", defaults={"resource_path": "/accounts", **lookup}
        )
        if created:
            Field.objects.create(model=account, path="email", type="string", required=True)
            if faulty:
                Field.objects.create(model=account, path="external_id", type="string", required=True)
        flow = Flow.objects.filter(name=f"Benchmark flow{suffix}").first()
        if flow is None:
            mapping = Mapping.objects.create(
                name=f"Benchmark mapping{suffix}", source_model=person, target_model=account
            )
            mapping_version_save(
                mapping=mapping,
                actor=None,
                rules=[
                    {
                        "target": "email",
                        "source": "email",
                        "transforms": [{"name": "trim"}, {"name": "lower"}],
                    },
                    {
                        "target": "name",
                        "transforms": [{"name": "template", "options": {"template": "{first} {last}"}}],
                    },
                    {"target": "role", "constant": "bench"},
                    *([{"target": "external_id", "source": "id"}] if faulty else []),
                ],
            )
            flow = Flow.objects.create(
                name=f"Benchmark flow{suffix}",
                source_system=source,
                source_model=person,
                event_type="person.created",
                target_system=target,
                target_model=account,
                operation=Operation.CREATE,
                mapping=mapping,
                state=FlowState.ACTIVE,
            )
        self.purge(source, flow)
        ensure_role_groups()
        user, _ = get_user_model().objects.get_or_create(username="bench-publisher")
        grant_role(user, PUBLISHER)
        # A fresh token each run (only its hash is kept, so an earlier one cannot be read back).
        _, key = api_token_create(user=user, systems=[source], actor=None, name="bench")
        return source, flow, key

    def purge(self, source: System, flow: Flow) -> None:
        """Earlier runs' benchmark data only, so each run measures its own events."""
        with transaction.atomic():
            flow.dead_letters.all().delete()
            Attempt.objects.filter(delivery__flow=flow).delete()
            Delivery.objects.filter(flow=flow).delete()
            RecordLink.objects.filter(flow=flow).delete()
            Event.objects.filter(system=source).delete()
        if connection.vendor == "postgresql":
            # The deleted rows would stay in the tables and indexes this run claims from until a
            # vacuum, and autovacuum may be behind or off (it is off on the benchmark machine):
            # each run would then be slower than the last.
            with connection.cursor() as cursor:
                for model in (Event, Delivery, Attempt, RecordLink, flow.dead_letters.model):
                    cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def analyze(self, source: System, flow: Flow) -> None:
        """Statistics for the tables the warm-up filled, as autovacuum would keep them.

        The purge leaves them empty, and a plan PostgreSQL cached on an empty table (the
        foreign-key checks' plans live as long as the connection) scans the whole table; an
        ANALYZE invalidates those plans, so the measured run uses the indexes, as a hub with
        autovacuum on does after its first minutes.
        """
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            for model in (Event, Delivery, Attempt, RecordLink, flow.dead_letters.model):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    def send(self, run, events, senders, batch, source, token, port, *, rate=None) -> Sent:
        """Events `<run>-0` .. `<run>-<events - 1>`: one signed webhook each, or batches of `batch`."""
        per_request = batch or 1
        chunks = [range(start, min(events, start + per_request)) for start in range(0, events, per_request)]
        built = []
        for chunk in chunks:
            if batch:
                body = json.dumps(
                    {
                        "events": [
                            {
                                "system": source.slug,
                                "type": "person.created",
                                "idempotency_key": f"{run}-{n}",
                                "payload": event_payload(run, n),
                            }
                            for n in chunk
                        ]
                    }
                ).encode()
                path, headers = "/api/v1/events/", {"Authorization": f"Token {token}"}
            else:
                body = json.dumps(event_payload(run, chunk[0])).encode()
                path, headers = f"/hooks/{source.slug}/", {source.signature_header: sign(source, body)}
            headers["Content-Type"] = "application/json"
            built.append(Request(tuple(chunk), path, body, headers))
        return send(built, port=port, senders=senders, rate=rate)

    def wait_finished(self, flow: Flow, expected: int, timeout: float, fleet: Fleet | None = None) -> bool:
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            open_count = Delivery.objects.filter(flow=flow).unfinished().count()
            if open_count == 0:
                return True
            if fleet is not None and (died := fleet.died()):
                raise CommandError(f"{', '.join(died)} exited during the run; see var/bench/<role>.log")
            if time.monotonic() - last_report > 5:
                self.stdout.write(f"  {open_count} deliveries still open...")
                last_report = time.monotonic()
            time.sleep(0.25)
        return False

    def figures(self, run, sent, received, finished, flow, target_state, options) -> dict:
        """Throughput, latency and correctness of the measured events, from the target's receipts."""
        first_receipt, copies = report.receipts(received, prefix=f"bench-{run}-")
        latencies = [(first_receipt[n] - sent.sent_at[n]) * 1000 for n in sent.acked if n in first_receipt]
        span = (max(first_receipt.values()) - min(sent.sent_at.values())) if first_receipt else 0.0
        deliveries = Delivery.objects.filter(flow=flow, event__idempotency_key__startswith=f"{run}-")
        batch, latency = options["batch"], options["target_latency_ms"]
        result = {
            "events": options["events"],
            "mode": f"batch {batch}" if batch else "webhook per event",
            "options": self.describe(options),
            "senders": options["senders"],
            "rate": options["rate"],
            "target": "faulty" if self.faults is not None else options["target"],
            "target_latency_ms": latency if options["target"] == "bench" and self.faults is None else None,
            "accepted": len(sent.acked),
            "rejected": len(sent.rejected),
            "delivered": len(first_receipt),
            "send_seconds": round(sent.seconds, 2),
            "events_per_s": round(len(first_receipt) / span, 1) if span else 0.0,
            **report.latency_figures(latencies),
            "lost": len([n for n in sent.acked if n not in first_receipt]),
            "duplicates": sum(count - 1 for count in copies.values()),
            "dead_lettered": deliveries.filter(status=DeliveryStatus.DEAD).count(),
            # Attempts beyond each delivery's first (an abandoned attempt of a killed worker counts).
            "retries": Attempt.objects.filter(delivery__in=deliveries, number__gt=1).count(),
            "all_finished": finished,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": "redis" if settings.REDIS_URL else "orm",
        }
        if options["rate"]:
            result["sender_behind_ms"] = round(sent.behind_s * 1000, 1)
        if sent.rejected:
            self.stdout.write(f"  {len(sent.rejected)} requests were not accepted, e.g. {sent.rejected[:3]}")
        if self.faults is not None:
            result["faults"] = {"shares": self.faults, "injected": target_state.get("injected", {})}
        return result

    def check_faults(self, result: dict, flow: Flow, finished: bool) -> None:
        """Against the faulty target nothing may be dead-lettered, duplicated or missing."""
        if self.faults is None:
            return
        dead, duplicates, lost = result["dead_lettered"], result["duplicates"], result["lost"]
        if dead or duplicates or lost:
            unfinished = ""
            if not finished:
                still_open = Delivery.objects.filter(flow=flow).unfinished().count()
                unfinished = f" ({still_open} still unfinished at --timeout)"
            raise CommandError(
                f"against the faulty target: {dead} dead-lettered, {duplicates} duplicates, "
                f"{lost} not received{unfinished}; each must be 0"
            )


def event_payload(run: str, n: int) -> dict:
    return {
        "id": f"{run}-{n}",
        "type": "person.created",
        "data": {
            "id": f"{run}-p{n}",
            "email": f" Bench-{run}-{n}@Example.com",
            "first": "Bench",
            "last": str(n),
        },
    }


def drain_memory(memory: MemorySampler, start: float, end: float) -> dict[str, float]:
    """The hub's RSS at the start, middle and end of the drain, and the most it reached."""
    samples = memory.between(start, end)
    if not samples:
        return {}
    middle = min(samples, key=lambda sample: abs(sample.at - (start + end) / 2))
    return {
        "start": report.mb(samples[0].rss),
        "middle": report.mb(middle.rss),
        "end": report.mb(samples[-1].rss),
        "max": report.mb(max(sample.rss for sample in samples)),
    }


def checkout() -> dict:
    """The commit that ran, and whether tracked files differed from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    return {"commit": commit, "dirty": bool(commit and git("status", "--porcelain", "--untracked-files=no"))}


def fault_shares(text: str) -> dict[str, float]:
    """--faults "429=0.05,500=0.05" as {"429": 0.05, "500": 0.05}, each a known fault."""
    shares = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, share = item.partition("=")
        if name not in FAULTS:
            raise CommandError(f"--faults: unknown fault {name!r}; known: {', '.join(FAULTS)}")
        try:
            shares[name] = float(share)
        except ValueError:
            raise CommandError(f"--faults: {item!r} is not FAULT=SHARE") from None
    return shares
