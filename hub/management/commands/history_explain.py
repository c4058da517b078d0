"""Time the sync history's searches on this database with EXPLAIN ANALYZE (PostgreSQL):
`manage.py history_explain` after `history_fill`. Each search's first page is planned and run
(the query of the page itself; its deliveries are one more indexed query per page), three times,
and the best time is printed with the indexes the plan used."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from hub.models import Delivery, DeliveryStatus, Event, Flow
from hub.selectors.history import PAGE_SIZE, HistoryFilters, history_page, history_page_events


def searches() -> dict[str, tuple[HistoryFilters, str]]:
    """Name -> (filters, cursor): the searches the history page is for."""
    newest = Event.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    last_day = (newest or timezone.now()) - timedelta(days=1)
    flow = Flow.objects.order_by("pk").first()
    deep = history_page(HistoryFilters(), size=PAGE_SIZE * 200).older  # a cursor 10,000 events deep
    return {
        "newest events, no filter": (HistoryFilters(), ""),
        "page 201 (10,000 events deep)": (HistoryFilters(), deep),
        "text: order number 1042": (HistoryFilters(text="1042"), ""),
        "text: email buyer1042@example.com": (HistoryFilters(text="buyer1042@example.com"), ""),
        "text: no match (zzqx)": (HistoryFilters(text="zzqx"), ""),
        "source record id ord_1042": (HistoryFilters(record="ord_1042"), ""),
        "target record id inv_1042": (HistoryFilters(record="inv_1042"), ""),
        "status dead": (HistoryFilters(status=DeliveryStatus.DEAD), ""),
        "flow + status retrying": (HistoryFilters(flow_id=flow.pk if flow else 0, status="retrying"), ""),
        "flow + status in flight (none)": (
            HistoryFilters(flow_id=flow.pk if flow else 0, status="in_flight"),
            "",
        ),
        "status skipped": (HistoryFilters(status=DeliveryStatus.SKIPPED), ""),
        "target system + status dead": (
            HistoryFilters(system_id=flow.target_system_id if flow else 0, status=DeliveryStatus.DEAD),
            "",
        ),
        "last 24 hours + status dead": (HistoryFilters(since=last_day, status=DeliveryStatus.DEAD), ""),
        "text 1042 + last 24 hours": (HistoryFilters(text="1042", since=last_day), ""),
    }


class Command(BaseCommand):
    help = "EXPLAIN ANALYZE the sync history's searches (PostgreSQL)."

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("history_explain measures PostgreSQL plans; set DATABASE_URL")
        self.stdout.write(f"{Delivery.objects.count():,} deliveries, {Event.objects.count():,} events")
        for name, (filters, after) in searches().items():
            sql, params = history_page_events(filters, after=after)[: PAGE_SIZE + 1].query.sql_with_params()
            best, plan = None, ""
            with connection.cursor() as cursor:
                for _ in range(3):
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    ms = float(re.search(r"Execution Time: ([\d.]+) ms", plan).group(1))
                    best = ms if best is None else min(best, ms)
            indexes = sorted(set(re.findall(r"Index (?:Only )?Scan(?: Backward)? (?:using|on) (\w+)", plan)))
            self.stdout.write(f"{best:9.2f} ms  {name}  [{', '.join(indexes) or 'no index'}]")
            if options["verbosity"] > 1:
                self.stdout.write(plan)
