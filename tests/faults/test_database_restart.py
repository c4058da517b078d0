"""The database restarted mid-run (PostgreSQL only: a throwaway cluster of the test's own, stopped
at once as a crash would and started again while orders arrive and deliveries are under way):
nothing answered 202 is lost, nothing is created twice, ingest never answers 500 (promise 6)."""

import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from tests.conftest import WorkerProcess, wait_for
from tests.faults.harness import WORKER_ENV, Scenario, plan, shop_to_target
from tests.hub.test_database_restart import PG_BIN, ThrowawayPostgres

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def restartable_database():
    """This test's database moved to a cluster it may restart, for the test process (and its live
    server's request threads, which connect afresh) and for the workers it starts."""
    if connection.vendor != "postgresql":
        pytest.skip("restarts a PostgreSQL cluster of its own")
    if not PG_BIN:
        pytest.skip("no PostgreSQL server binaries to start a cluster with")
    cluster = ThrowawayPostgres().start()
    moved = {"HOST": "127.0.0.1", "PORT": str(cluster.port), "NAME": "hub"}
    configs = {
        id(c): c
        for c in (settings.DATABASES["default"], connections.settings["default"], connection.settings_dict)
    }
    saved = {key: {name: config[name] for name in moved} for key, config in configs.items()}
    connection.close()
    for config in configs.values():
        config.update(moved)
    try:
        call_command("migrate", interactive=False, verbosity=0)
        yield cluster
    finally:
        connection.close()
        for key, config in configs.items():
            config.update(saved[key])
        cluster.stop()


def test_it_loses_nothing_and_repeats_nothing_when_the_database_restarts_mid_run(
    restartable_database, faulty_target, live_server
):
    faulty_target.set_plan(plan({}, delay=0.02))
    fault = "PostgreSQL restarted (immediate stop) mid-run"
    run = Scenario("database_restart", fault, faulty_target, shop_to_target(faulty_target), 300)
    env = {**WORKER_ENV, "DATABASE_URL": restartable_database.url}
    workers = WorkerProcess(workers=2, extra_env=env)
    try:
        sender = threading.Thread(
            target=run.post, args=(live_server.url,), kwargs={"senders": 2, "expect_all": False}
        )
        sender.start()
        wait_for(lambda: faulty_target.state()["records"] >= 30, message="deliveries under way")
        if sender.is_alive():
            run.fault += ", while orders were arriving"
        restartable_database.restart()
        connection.close()
        sender.join(120)
        figures = run.finish(timeout=120)
    finally:
        workers.stop()
    assert len(run.posted.accepted) == run.orders, run.posted.statuses
    assert figures.problems == [], figures
    # While the database is away, ingest answers 503 with Retry-After, never 500.
    assert "500" not in figures.ingest_refusals, figures.ingest_refusals
