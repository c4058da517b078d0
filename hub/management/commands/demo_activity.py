"""Business activity in the sandbox systems, so a newcomer sees events flow: deals are won,
cards are charged, people are hired. Talks only to the sandbox's own REST APIs."""

import random
import time

import requests
from django.core.management.base import BaseCommand

from connectors.sandbox import DEMO_CREDENTIALS
from hub.demo import sandbox_url

FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Luca"]
LAST = ["Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka", "Ulrich", "Varga", "Weber"]
DEPARTMENTS = ["Sales", "Support", "Operations", "Finance"]
SKUS = ["SKU-CHAIR", "SKU-DESK", "SKU-LAMP", "SKU-MONITOR", "SKU-DOCK"]


class Command(BaseCommand):
    help = "Generate demo business activity in the sandbox systems."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=8.0, help="Seconds between actions.")
        parser.add_argument(
            "--count", type=int, default=0, help="Stop after this many actions (0 = forever)."
        )
        parser.add_argument("--wait-for", default="", help="Wait until this hub URL answers /healthz.")

    def handle(self, *args, interval, count, wait_for, **options):
        if wait_for:
            for _ in range(120):
                try:
                    if requests.get(f"{wait_for}/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.5)
        session = requests.Session()
        actions = [self.win_deal, self.charge_card, self.hire_person]
        done = 0
        while not count or done < count:
            action = actions[done % len(actions)]
            try:
                action(session)
            except requests.RequestException as exc:
                self.stderr.write(f"demo activity: {action.__name__} failed: {exc}")
            done += 1
            time.sleep(interval)

    def win_deal(self, session: requests.Session) -> None:
        base, headers = sandbox_url("crm"), {"X-Api-Key": DEMO_CREDENTIALS["crm"]["api_key"]}
        first, last = random.choice(FIRST), random.choice(LAST)
        lines = [
            {
                "sku": sku.lower() if random.random() < 0.3 else sku,
                "quantity": random.randint(1, 3),
                "unit_price": random.choice([49.0, 129.0, 399.0]),
            }
            for sku in random.sample(SKUS, 2)
        ]
        deal = session.post(
            f"{base}/deals",
            headers=headers,
            timeout=5,
            json={
                "title": f"{last} & Co refit",
                "amount": round(sum(line["quantity"] * line["unit_price"] for line in lines), 2),
                "currency": random.choice(["EUR", "USD", "GBP"]),
                "stage": "proposal",
                "customer": {
                    "email": f"{first.lower()}.{last.lower()}@example.com",
                    "name": f"{first} {last}",
                },
                "lines": lines,
                "owner_email": "sam@example.com",
            },
        ).json()
        session.patch(f"{base}/deals/{deal['id']}", headers=headers, json={"stage": "won"}, timeout=5)

    def charge_card(self, session: requests.Session) -> None:
        creds = DEMO_CREDENTIALS["payments"]
        first, last = random.choice(FIRST), random.choice(LAST)
        session.post(
            f"{sandbox_url('payments')}/charges",
            auth=(creds["username"], creds["password"]),
            timeout=5,
            json={
                "amount": random.randint(1000, 250000),
                "currency": random.choice(["eur", "usd"]),
                "customer_email": f" {first}.{last}@Example.com",
                "description": "Online order",
                "status": "succeeded",
                "paid_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def hire_person(self, session: requests.Session) -> None:
        headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['hr']['token']}"}
        first, last = random.choice(FIRST), random.choice(LAST)
        session.post(
            f"{sandbox_url('hr')}/employees",
            headers=headers,
            timeout=5,
            json={
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}{random.randint(1, 999)}@example.com",
                "department": random.choice(DEPARTMENTS),
                "title": "Specialist",
                "start_date": time.strftime("%Y-%m-%d", time.gmtime(time.time() + 14 * 86400)),
                "status": "hired",
            },
        )
