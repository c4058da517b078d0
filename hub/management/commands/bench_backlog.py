"""Fairness benchmark: a healthy flow's figures while another flow's target is down with a backlog.

Queues `--backlog` deliveries for a flow whose target refuses every connection (a closed
loopback port), measures what one claim costs with that queue, then runs `manage.py bench`'s
end-to-end measurement for a healthy flow beside it: its events/s and latency should not depend
on the other flow's backlog. The last line is one JSON object.
"""

import json
import statistics
import time
import uuid
from pathlib import Path

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from connectors.models import AuthScheme, System
from hub.management.benchkit import roles
from hub.management.benchkit.processes import Fleet
from hub.management.benchkit.report import latency_figures, receipts
from hub.management.commands.bench import Command as BenchCommand
from hub.management.commands.bench import free_port, wait_http
from hub.models import Attempt, Delivery, Event, Flow, FlowState, Operation, RecordLink
from hub.pipeline import clock
from hub.pipeline.claim import deliveries_claim
from hub.pipeline.dispatch import kick_workers
from hub.pipeline.rows import insert_rows
from hub.services.mappings import mapping_version_save
from mappings.models import DataModel, Field, Mapping

BACKLOG_FLOW = "Benchmark backlog flow"


class _RolledBack(Exception):
    """Raised to undo a measured claim."""


class Command(BenchCommand):
    help = (
        "Benchmark a healthy flow beside a flow whose target is down with N deliveries queued; "
        "prints the claim time and the healthy flow's events/s and latency."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(senders=8)  # as its figures in the README were measured
        parser.add_argument(
            "--backlog", type=int, default=100_000, help="Deliveries queued for the down target."
        )
        parser.add_argument(
            "--claim-only", action="store_true", help="Measure the claim only; start no processes."
        )

    def handle(
        self, *args, events, senders, batch, workers, web_workers, timeout, backlog, claim_only, **options
    ):
        events = events or 2000
        if backlog < 0 or backlog > 1_000_000:
            raise CommandError("--backlog must be between 0 and 1000000")
        call_command("migrate", interactive=False, verbosity=0)
        down_flow = self.backlog_flow()
        self.stdout.write(f"Queueing {backlog} deliveries for a target that refuses connections...")
        self.fill_backlog(down_flow, backlog)
        claim = self.measure_claim()
        self.stdout.write(
            f"  one claim of {settings.HUB_CLAIM_BATCH}: median {claim['claim_ms']} ms, "
            f"p90 {claim['claim_p90_ms']} ms"
        )
        result = {"backlog": backlog, **claim}
        if not claim_only:
            result.update(self.run_beside(events, senders, batch, workers, web_workers, timeout, down_flow))
        result["backlog_attempts"] = Attempt.objects.filter(delivery__flow=down_flow).count()
        self.stdout.write(json.dumps(result))

    def backlog_flow(self) -> Flow:
        """A flow of its own source to a target nothing listens on (reused across runs)."""
        source, _ = System.objects.update_or_create(
            slug="bench-backlog-source", defaults=dict(name="Bench backlog source")
        )
        target, _ = System.objects.update_or_create(
            slug="bench-down-target",
            defaults=dict(
                name="Bench down target",
                base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens: connection refused
                auth_scheme=AuthScheme.NONE,
                rate_limit_per_second=None,
            ),
        )
        person, _ = DataModel.objects.get_or_create(
            system=source, name="Person", defaults={"resource_path": "/people"}
        )
        account, created = DataModel.objects.get_or_create(
            system=target, name="Account", defaults={"resource_path": "/accounts"}
        )
        if created:
            Field.objects.create(model=account, path="email", type="string", required=True)
        flow = Flow.objects.filter(name=BACKLOG_FLOW).first()
        if flow is None:
            mapping = Mapping.objects.create(
                name="Benchmark backlog mapping", source_model=person, target_model=account
            )
            mapping_version_save(mapping=mapping, actor=None, rules=[{"target": "email", "source": "email"}])
            flow = Flow.objects.create(
                name=BACKLOG_FLOW,
                source_system=source,
                source_model=person,
                event_type="person.created",
                target_system=target,
                target_model=account,
                operation=Operation.CREATE,
                mapping=mapping,
                state=FlowState.ACTIVE,
                # Never give up during a run: the backlog stays queued however long it takes.
                max_attempts=1000,
                max_age_seconds=7 * 24 * 3600,
            )
        return flow

    def fill_backlog(self, flow: Flow, count: int) -> None:
        """Earlier runs' backlog out, `count` new due deliveries in (distinct records)."""
        with transaction.atomic():
            flow.dead_letters.all().delete()
            Attempt.objects.filter(delivery__flow=flow).delete()
            Delivery.objects.filter(flow=flow).delete()
            RecordLink.objects.filter(flow=flow).delete()
            Event.objects.filter(system=flow.source_system).delete()
        run = uuid.uuid4().hex[:8]
        now = clock.now()
        for start in range(0, count, 2000):
            events, deliveries = [], []
            for n in range(start, min(count, start + 2000)):
                event = Event(
                    system=flow.source_system,
                    event_type="person.created",
                    idempotency_key=f"backlog-{run}-{n}",
                    record_id=f"b{n}",
                    payload={"id": f"b{n}", "email": f"backlog-{n}@example.com"},
                    origin=Event.Origin.API,
                    received_at=now,
                )
                events.append(event)
                deliveries.append(
                    Delivery(event=event, flow=flow, record_key=f"b{n}", next_attempt_at=now, created_at=now)
                )
            with transaction.atomic():
                insert_rows(Event, events)
                insert_rows(Delivery, deliveries)
        if connection.vendor == "postgresql":
            # As autovacuum would soon: the last run's deleted backlog would otherwise sit in
            # the indexes and be measured as part of this run's claim.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE hub_delivery")

    def measure_claim(self, rounds: int = 30) -> dict[str, float]:
        """What one claim costs with the queue as it is: claims undone, so the queue stays."""
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            try:
                with transaction.atomic():
                    deliveries_claim(limit=settings.HUB_CLAIM_BATCH)
                    timings.append((time.perf_counter() - started) * 1000)
                    raise _RolledBack
            except _RolledBack:
                pass
        timings.sort()
        return {
            "claim_ms": round(statistics.median(timings), 2),
            "claim_p90_ms": round(timings[int(len(timings) * 0.9) - 1], 2),
        }

    def run_beside(self, events, senders, batch, workers, web_workers, timeout, down_flow) -> dict:
        """The healthy flow's end-to-end figures while workers also face the backlog."""
        run = uuid.uuid4().hex[:8]
        target_port, web_port = free_port(), free_port()
        env = roles.child_env(run, workers)
        log_dir = Path(settings.VAR_DIR) / "bench"
        log_dir.mkdir(exist_ok=True)
        fleet = Fleet(cwd=Path(settings.BASE_DIR), log_dir=log_dir)
        try:
            fleet.start([("target", roles.sandbox_target(port=target_port), env)])
            target_url = f"http://127.0.0.1:{target_port}"
            wait_http(f"{target_url}/_control/state")
            self.faults = None
            source, flow, token = self.setup(target_url)
            fleet.start(
                roles.hub_roles(
                    base_dir=Path(settings.BASE_DIR), web_port=web_port, web_workers=web_workers, env=env
                )
            )
            wait_http(f"http://127.0.0.1:{web_port}/healthz")
            kick_workers()
            self.stdout.write("Letting the workers meet the backlog for 15 s...")
            time.sleep(15)
            self.stdout.write(f"Sending {events} events for the healthy flow from {senders} senders...")
            sent = self.send(run, events, senders, batch, source, token, web_port)
            finished = self.wait_finished(flow, len(sent.acked), timeout, fleet)
            received = requests.get(f"{target_url}/_control/received", timeout=30).json()
        finally:
            fleet.stop()
        first_receipt, copies = receipts(received, prefix=f"bench-{run}-")
        latencies = [(first_receipt[n] - sent.sent_at[n]) * 1000 for n in sent.acked if n in first_receipt]
        span = (max(first_receipt.values()) - min(sent.sent_at.values())) if first_receipt else 0.0
        figures = {
            "events": events,
            "accepted": len(sent.acked),
            "rejected": len(sent.rejected),
            "events_per_s": round(len(first_receipt) / span, 1) if span else 0.0,
            **latency_figures(latencies),
            "lost": len([n for n in sent.acked if n not in first_receipt]),
            "duplicates": sum(count - 1 for count in copies.values()),
            "all_finished": finished,
            "backlog_still_queued": Delivery.objects.filter(flow=down_flow).unfinished().count(),
        }
        self.stdout.write(
            f"healthy flow: {figures['events_per_s']} events/s; p50 {figures['p50_ms']} ms, "
            f"p95 {figures['p95_ms']} ms; lost {figures['lost']}, duplicates {figures['duplicates']}"
        )
        return figures
