"""End-to-end benchmark: webhooks (or batch API calls) in, records at a loopback sandbox target out.

Starts its own web server (gunicorn), worker cluster (qcluster) and sandbox target on free
loopback ports, against the configured database, pushes a bounded number of events from
concurrent senders, waits for every delivery to finish, and prints its figures; the last line
is one JSON object.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connectors.models import AuthScheme, SignatureScheme, System
from connectors.netpolicy import env_allowing_loopback
from connectors.sandbox import DEMO_CREDENTIALS
from connectors.sandbox.faulty import DEFAULT_API_KEY as FAULTY_API_KEY
from connectors.sandbox.faulty import FAULTS
from connectors.signatures import sign
from hub.models import Attempt, Delivery, DeliveryStatus, Event, Flow, FlowState, Operation, RecordLink
from hub.roles import PUBLISHER, ensure_role_groups, grant_role
from hub.services.mappings import mapping_version_save
from hub.services.users import api_token_create
from mappings.models import DataModel, Field, Mapping

BENCH_SECRET = "bench-webhook-secret"
FAULTY_DEFAULT = "429=0.05,500=0.05,timeout=0.02,drop_after=0.05"


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


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Benchmark ingest -> mapping -> delivery end to end on loopback; prints events/s and latency."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2000, help="How many events to send (bounded).")
        parser.add_argument("--senders", type=int, default=8, help="Concurrent senders.")
        parser.add_argument(
            "--batch", type=int, default=0, help="Send through the batch API, N events a request."
        )
        parser.add_argument("--workers", type=int, default=2, help="django-q2 worker processes.")
        parser.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes.")
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

    def handle(self, *args, events, senders, batch, workers, web_workers, timeout, **options):
        if events < 1 or events > 100_000:
            raise CommandError("--events must be between 1 and 100000")
        self.faults = fault_shares(options["faults"]) if options.get("faulty") else None
        if batch < 0 or batch > settings.HUB_MAX_BATCH_EVENTS:
            raise CommandError(f"--batch must be between 0 and {settings.HUB_MAX_BATCH_EVENTS}")
        call_command("migrate", interactive=False, verbosity=0)
        run = uuid.uuid4().hex[:8]
        sandbox_port, web_port = free_port(), free_port()
        children: list[subprocess.Popen] = []
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env = {
            **env_allowing_loopback(env),  # the sandbox target listens on 127.0.0.1
            "HUB_WORKERS": str(workers),
            "HUB_QUEUE_NAME": f"bench-{run}",
            "HUB_CACHE_PREFIX": f"bench-{run}",
            "HUB_DRAIN_LINGER_SECONDS": "2",
        }
        log_dir = Path(settings.VAR_DIR) / "bench"
        log_dir.mkdir(exist_ok=True)
        try:
            children.append(self.spawn(self.sandbox_argv(sandbox_port), env, log_dir / "sandbox.log"))
            target_url = f"http://127.0.0.1:{sandbox_port}"
            wait_http(f"{target_url}/_control/state")
            source, flow, token = self.setup(target_url)
            children.append(
                self.spawn(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "hub.wsgi:application",
                        "--bind",
                        f"127.0.0.1:{web_port}",
                        "--workers",
                        str(web_workers),
                        "--worker-class",
                        "hub.gunicorn_worker.NoDelaySyncWorker",
                        "--log-level",
                        "warning",
                    ],
                    env,
                    log_dir / "web.log",
                )
            )
            children.append(
                self.spawn(
                    [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster"],
                    env,
                    log_dir / "workers.log",
                )
            )
            wait_http(f"http://127.0.0.1:{web_port}/healthz")
            # Warm every process up (imports, connections, caches) on events that are not counted.
            warmup = min(400, max(50, events // 10))
            self.stdout.write(f"Warming up with {warmup} events (not counted)...")
            _, warm_acked, _, _ = self.send(f"warm{run}", warmup, senders, batch, source, token, web_port)
            if not self.wait_finished(flow, len(warm_acked), timeout):
                raise CommandError("the warm-up events were not delivered in time; see var/bench/*.log")
            self.stdout.write(
                f"Sending {events} events from {senders} senders "
                f"({'batches of ' + str(batch) if batch else 'one webhook per event'})..."
            )
            sent_at, acked, rejected, send_seconds = self.send(
                run, events, senders, batch, source, token, web_port
            )
            self.stdout.write(
                f"  sent in {send_seconds:.1f}s ({len(acked) / send_seconds:.0f} events/s accepted); "
                "waiting for deliveries..."
            )
            finished = self.wait_finished(flow, len(acked), timeout)
            received = requests.get(f"{target_url}/_control/received", timeout=30).json()
            target_state = requests.get(f"{target_url}/_control/state", timeout=30).json()
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
        self.report(run, events, sent_at, acked, rejected, received, finished, batch, flow, target_state)

    def sandbox_argv(self, port: int) -> list[str]:
        """The target to deliver to: the inventory sandbox, or with --faulty the faulty target."""
        faults = getattr(self, "faults", None)
        if faults is not None:
            shares = [f"--share={name}={share}" for name, share in faults.items()]
            # Late answers come 1.5 s after the request, past the target system's 1 s read timeout.
            return [
                sys.executable,
                "-m",
                "connectors.sandbox.faulty",
                "--port",
                str(port),
                "--timeout-delay",
                "1.5",
                *shares,
            ]
        return [
            sys.executable,
            "-m",
            "connectors.sandbox",
            "--systems",
            "inventory",
            "--port-base",
            str(port - 3),
        ]

    def spawn(self, argv, env, log_path: Path) -> subprocess.Popen:
        return subprocess.Popen(
            argv, env=env, cwd=settings.BASE_DIR, stdout=open(log_path, "w"), stderr=subprocess.STDOUT
        )

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
                # The faulty target's late answers come after 1.5 s (sandbox_argv): past this.
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

    def send(self, run, events, senders, batch, source, token, port):
        sent_at: dict[int, float] = {}
        acked: set[int] = set()
        rejected: list[str] = []
        lock = threading.Lock()
        per_request = batch or 1
        chunks = [
            list(range(start, min(events, start + per_request))) for start in range(0, events, per_request)
        ]
        cursor = iter(chunks)

        def event_payload(n: int) -> dict:
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

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while True:
                with lock:
                    chunk = next(cursor, None)
                if chunk is None:
                    break
                if batch:
                    body = json.dumps(
                        {
                            "events": [
                                {
                                    "system": source.slug,
                                    "type": "person.created",
                                    "idempotency_key": f"{run}-{n}",
                                    "payload": event_payload(n),
                                }
                                for n in chunk
                            ]
                        }
                    ).encode()
                    path, headers = "/api/v1/events/", {"Authorization": f"Token {token}"}
                else:
                    body = json.dumps(event_payload(chunk[0])).encode()
                    path, headers = f"/hooks/{source.slug}/", {"X-Signature": sign(source, body)}
                headers["Content-Type"] = "application/json"
                started = time.time()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    status, exc_text = 0, str(exc)
                with lock:
                    for n in chunk:
                        sent_at[n] = started
                    if status == 202:
                        acked.update(chunk)
                    else:
                        rejected.append(f"{status}: {exc_text if status == 0 else ''}")
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(senders)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sent_at, acked, rejected, time.monotonic() - started

    def wait_finished(self, flow: Flow, expected: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            open_count = Delivery.objects.filter(flow=flow).unfinished().count()
            if open_count == 0:
                return True
            if time.monotonic() - last_report > 5:
                self.stdout.write(f"  {open_count} deliveries still open...")
                last_report = time.monotonic()
            time.sleep(0.25)
        return False

    def report(
        self, run, events, sent_at, acked, rejected, received, finished, batch, flow=None, target_state=None
    ):
        first_receipt, copies = receipts(received, prefix=f"bench-{run}-")
        latencies = [(first_receipt[n] - sent_at[n]) * 1000 for n in acked if n in first_receipt]
        lost = len([n for n in acked if n not in first_receipt])
        duplicates = sum(count - 1 for count in copies.values())
        span = (max(first_receipt.values()) - min(sent_at.values())) if first_receipt else 0.0
        deliveries = Delivery.objects.filter(
            **({"flow": flow} if flow else {"flow__name": "Benchmark flow"}),
            event__idempotency_key__startswith=f"{run}-",
        )
        dead = deliveries.filter(status=DeliveryStatus.DEAD).count()
        # Attempts beyond each delivery's first (an abandoned attempt of a killed worker counts).
        retries = Attempt.objects.filter(delivery__in=deliveries, number__gt=1).count()
        result = {
            "events": events,
            "mode": f"batch {batch}" if batch else "webhook per event",
            "accepted": len(acked),
            "rejected": len(rejected),
            "events_per_s": round(len(first_receipt) / span, 1) if span else 0.0,
            **latency_figures(latencies),
            "lost": lost,
            "duplicates": duplicates,
            "dead_lettered": dead,
            "retries": retries,
            "all_finished": finished,
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": "redis" if settings.REDIS_URL else "orm",
        }
        if rejected:
            self.stdout.write(f"  {len(rejected)} requests were not accepted, e.g. {rejected[:3]}")
        self.stdout.write(
            f"{result['events_per_s']} events/s end to end; latency p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms; lost {lost}, duplicates {duplicates}"
        )
        faults = getattr(self, "faults", None)
        if faults is not None and target_state:
            result["faults"] = {"shares": faults, "injected": target_state.get("injected", {})}
        self.stdout.write(json.dumps(result))
        if faults is not None and (dead or duplicates or lost):
            unfinished = (
                "" if finished else f" ({deliveries.unfinished().count()} still unfinished at --timeout)"
            )
            raise CommandError(
                f"against the faulty target: {dead} dead-lettered, {duplicates} duplicates, "
                f"{lost} not received{unfinished}; each must be 0"
            )


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


def latency_figures(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=0.0), 1),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else 0.0,
    }
