"""Business activity in the sandbox systems, so a newcomer sees events flow: deals are won,
cards are charged, people are hired. Talks only to the sandbox's own REST APIs, through the same
actions as the Demo systems page (hub/demo_actions.py)."""

import random
import time

import requests
from django.core.management.base import BaseCommand

from hub.demo import sandbox_url
from hub.demo_actions import DemoActionError, card_charge, deal_win, person_hire


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
        session, rng = requests.Session(), random.Random()
        actions = [("crm", deal_win), ("payments", card_charge), ("hr", person_hire)]
        done = 0
        while not count or done < count:
            slug, action = actions[done % len(actions)]
            try:
                action(session, sandbox_url(slug), rng)
            except DemoActionError as exc:
                self.stderr.write(f"demo activity: {action.__name__} failed: {exc}")
            done += 1
            time.sleep(interval)
