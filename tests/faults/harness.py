"""The fault-injection suite's harness: a flow from a webshop into the faulty target, orders posted
through the real webhook ingest, real worker processes, and the figures each scenario is judged by.

A scenario passes when every event was carried out exactly once in effect (its record is in the
target once) or dead-lettered with a class its faults explain (and then its record is not in the
target, unless the class says the outcome is unknown), and the hub's counts equal the target's.
The figures are also written to `$HUB_FAULTS_FIGURES/<scenario>.json` when that is set, for the
README table (`python -m tests.faults.report`).
"""

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from django.db import close_old_connections
from django.db.utils import DatabaseError

from connectors.models import AuthScheme, System
from connectors.sandbox.faulty import FaultPlan, FaultyTarget
from connectors.signatures import sign
from dlq.models import DeadLetter
from hub.models import UNFINISHED, Attempt, AuditEntry, Delivery, DeliveryStatus, Event, Flow, Operation
from tests.conftest import wait_for
from tests.factories import SystemFactory, flow_with_mapping, model_with_fields

# Short leases so a killed worker's batch is taken up again within seconds; small batches so two
# workers share the work.
WORKER_ENV = {"HUB_LEASE_SECONDS": "4", "HUB_DRAIN_LINGER_SECONDS": "1", "HUB_CLAIM_BATCH": "25"}
SHOP_SECRET = "whsec-shop-faults"
# Attempts enough that transient faults at these shares never exhaust them by chance.
MAX_ATTEMPTS = 12


def shop_to_target(
    target: FaultyTarget,
    *,
    lookup: bool = True,
    operation: str = Operation.CREATE,
    read_timeout: float = 0.5,
) -> Flow:
    """Orders of a webshop become records in the faulty target, keyed there by the order id."""
    shop = SystemFactory(name="Shop", slug="shop", webhook_secret={"secret": SHOP_SECRET})
    vendor = System.objects.create(
        # The pace a target's 429s teach is kept in Redis by system id and outlives the test
        # database; an id of its own keeps an earlier run's (or another suite's) pace off this one.
        pk=random.randrange(10**6, 10**9),
        name="Vendor",
        slug="vendor",
        base_url=target.url,
        auth_scheme=AuthScheme.API_KEY,
        credentials={"api_key": target.api_key},
        connect_timeout=1.0,
        read_timeout=read_timeout,
    )
    lookup_options = {"lookup_field": "external_id", "lookup_param": "external_id"} if lookup else {}
    return flow_with_mapping(
        source_model=model_with_fields(shop, "Order", "/orders", "id! customer! amount:number!"),
        target_model=model_with_fields(
            vendor, "Record", "/records", "external_id! name! amount:number!", **lookup_options
        ),
        rules=[
            {"target": "external_id", "source": "id"},
            {"target": "name", "source": "customer"},
            {"target": "amount", "source": "amount"},
        ],
        event_type="order.created",
        operation=operation,
        max_attempts=MAX_ATTEMPTS,
    )


def order_webhook(n: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{n}",
            "type": "order.created",
            "data": {"id": f"ord_{n}", "customer": f"Customer {n}", "amount": 10 + n},
        }
    ).encode()


@dataclass
class Posted:
    """What the senders saw: events answered 202, every status, and each webhook's sendings."""

    accepted: set[int] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    sendings: int = 0


def post_orders(
    url: str,
    source: System,
    numbers: range,
    *,
    twice: float = 0.0,
    senders: int = 4,
    seed: int = 1,
    give_up_after: float = 60.0,
) -> Posted:
    """Post one signed webhook per order (a share `twice` of them sent twice, as vendors do), from
    concurrent senders. An answer other than 202 is sent again after its Retry-After, as a vendor
    would, until `give_up_after`; every status is counted."""
    chance = random.Random(seed)
    queue = [n for n in numbers for _ in range(2 if chance.random() < twice else 1)]
    chance.shuffle(queue)
    posted = Posted(sendings=len(queue))
    lock = threading.Lock()
    hook = f"{url}/hooks/{source.slug}/"

    def send_all() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                n = queue.pop()
            body = order_webhook(n)
            headers = {"Content-Type": "application/json", "X-Signature": sign(source, body)}
            deadline = time.monotonic() + give_up_after
            while time.monotonic() < deadline:
                try:
                    answer = session.post(hook, data=body, headers=headers, timeout=10)
                    status, wait = answer.status_code, float(answer.headers.get("Retry-After") or 0.2)
                except requests.RequestException:
                    status, wait = 0, 0.2
                    session = requests.Session()
                with lock:
                    posted.statuses[status] += 1
                    if status == 202:
                        posted.accepted.add(n)
                if status == 202:
                    break
                time.sleep(min(wait, 2.0))

    threads = [threading.Thread(target=send_all) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return posted


def finished(flow: Flow, expected: int) -> bool:
    """Every expected delivery exists and has an end (succeeded, dead or outcome unknown).
    Survives a database that is away for a moment."""
    try:
        deliveries = Delivery.objects.filter(flow=flow)
        return deliveries.count() >= expected and not deliveries.unfinished().exists()
    except DatabaseError:
        close_old_connections()
        return False


def wait_finished(flow: Flow, expected: int, *, timeout: float = 90.0) -> None:
    try:
        wait_for(lambda: finished(flow, expected), timeout=timeout, message="every delivery to finish")
    except AssertionError:
        open_ones = Counter(Delivery.objects.filter(flow=flow).values_list("status", flat=True))
        raise AssertionError(f"deliveries still open after {timeout:.0f}s: {dict(open_ones)}") from None


@dataclass
class Figures:
    """One scenario's outcome, as the hub and the target each count it."""

    scenario: str
    fault: str
    events: int = 0
    delivered: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    unfinished: int = 0  # not ended when the scenario stopped waiting
    target_records: int = 0
    duplicates: int = 0
    retries: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    early_retries: int = 0
    ingest_refusals: dict[str, int] = field(default_factory=dict)  # webhook answers other than 202
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    """One run: `name` (its figures file), `fault` (its row in the README table), the target and
    flow, how many orders, and the dead-letter classes its faults explain."""

    name: str
    fault: str
    target: FaultyTarget
    flow: Flow
    orders: int
    allowed_dead: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)
    posted: Posted | None = None

    def post(self, url: str, *, expect_all: bool = True, **options) -> Posted:
        """Post every order through the webhook ingest (see post_orders)."""
        self.posted = post_orders(url, self.flow.source_system, range(self.orders), **options)
        if expect_all:
            assert len(self.posted.accepted) == self.orders, self.posted.statuses
        return self.posted

    def finish(self, *, timeout: float = 90.0) -> "Figures":
        """Wait for every delivery to end, then judge; the figures are kept even when they do not
        end in time."""
        accepted = len(self.posted.accepted) if self.posted else self.orders
        try:
            wait_finished(self.flow, accepted, timeout=timeout)
        except AssertionError:
            self.judge()
            raise
        return self.judge()

    def judge(self) -> "Figures":
        """Count both sides and list every way they disagree with "exactly once in effect"."""
        close_old_connections()
        flow = self.flow
        state = self.target.state()
        stored: dict[str, list[str]] = {}
        for record in self.target.all_records():
            stored.setdefault(str(record.get("external_id")), []).append(str(record["id"]))
        deliveries = list(
            Delivery.objects.filter(flow=flow).values("id", "record_key", "status", "target_id")
        )
        letters = dict(
            DeadLetter.objects.filter(flow=flow, resolved_at__isnull=True).values_list(
                "delivery_id", "error_class"
            )
        )
        statuses = self.posted.statuses if self.posted else {}
        figures = Figures(
            scenario=self.name,
            fault=self.fault,
            events=Event.objects.filter(system=flow.source_system).count(),
            delivered=sum(1 for d in deliveries if d["status"] == DeliveryStatus.SUCCEEDED),
            dead_lettered=dict(Counter(letters.values())),
            unknown=sum(1 for d in deliveries if d["status"] == DeliveryStatus.UNKNOWN),
            unfinished=sum(1 for d in deliveries if d["status"] in UNFINISHED),
            target_records=state["records"],
            duplicates=state["duplicates"],
            retries=Attempt.objects.filter(delivery__flow=flow).count() - len(deliveries),
            injected=state["injected"],
            early_retries=state["early_retries"],
            ingest_refusals={str(k): n for k, n in statuses.items() if k != 202},
            seconds=round(time.monotonic() - self.started, 1),
        )
        problems = figures.problems
        if figures.events != self.orders:
            problems.append(f"{figures.events} events stored, {self.orders} expected")
        if len(deliveries) != figures.events:
            problems.append(f"{len(deliveries)} deliveries for {figures.events} events")
        if figures.duplicates:
            copies = Counter({key: len(ids) for key, ids in stored.items() if len(ids) > 1})
            problems.append(f"{figures.duplicates} duplicate target records, e.g. {copies.most_common(3)}")
        if figures.early_retries:
            problems.append(f"{figures.early_retries} requests came before the target's Retry-After")
        for delivery in deliveries:
            found = stored.get(delivery["record_key"], [])
            problems.extend(_disagreements(delivery, found, letters, self.allowed_dead))
        strays = sorted(set(stored) - {d["record_key"] for d in deliveries})
        if strays:
            problems.append(f"target records for no delivery: {strays[:5]}")
        _save(figures)
        return figures


def _disagreements(delivery: dict, ids: list[str], letters: dict[int, str], allowed_dead) -> list[str]:
    key, status = delivery["record_key"], delivery["status"]
    letter = letters.get(delivery["id"])
    if status == DeliveryStatus.SUCCEEDED:
        if not ids:
            return [f"{key}: succeeded, but the target has no record"]
        if delivery["target_id"] and delivery["target_id"] not in ids:
            return [f"{key}: linked to target record {delivery['target_id']}, the target has {ids}"]
        return []
    if status == DeliveryStatus.UNKNOWN:
        if letter != "outcome_unknown":
            return [f"{key}: outcome unknown, but its dead letter is {letter!r}"]
        return [] if "outcome_unknown" in allowed_dead else [f"{key}: outcome unknown"]
    if status == DeliveryStatus.DEAD:
        if letter not in allowed_dead:
            return [f"{key}: dead-lettered as {letter!r}, expected one of {allowed_dead}"]
        if ids and letter != "outcome_unknown":
            return [f"{key}: dead-lettered as {letter}, yet the target has its record {ids}"]
        return []
    return [f"{key}: still {status}"]


def pauses(flow: Flow) -> int:
    return AuditEntry.objects.filter(target_type="flow", target_id=str(flow.pk), verb="pause").count()


def _save(figures: Figures) -> None:
    folder = os.environ.get("HUB_FAULTS_FIGURES")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        (path / f"{figures.scenario}.json").write_text(json.dumps(asdict(figures), indent=1))


def plan(shares: dict[str, float], **options) -> FaultPlan:
    """A plan of write faults by share, seeded so a run can be repeated; answers that time out
    come 0.8 s late, past the vendor system's read timeout of 0.5 s."""
    settings = dict(seed=7, retry_after=1, timeout_delay=0.8, timeout_commit_share=0.5) | options
    return FaultPlan(shares=shares, **settings)
