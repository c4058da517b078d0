import secrets

import pytest

from connectors.sandbox.faulty import FaultyTarget
from tests.conftest import WorkerProcess
from tests.faults.harness import WORKER_ENV


@pytest.fixture(scope="session")
def _faulty_target_server():
    with FaultyTarget() as target:
        yield target


@pytest.fixture
def faulty_target(_faulty_target_server):
    """The misbehaving vendor API on a loopback port, emptied and without faults for each test.
    Each test gets a new API key, so a call still under way from an earlier test is turned away
    instead of storing a record this test would count."""
    _faulty_target_server.reset(api_key=f"key-{secrets.token_hex(6)}")
    yield _faulty_target_server
    _faulty_target_server.reset()


@pytest.fixture(scope="module")
def shared_cluster(django_db_setup):
    """One worker cluster for a module's scenarios that need no cluster of their own (starting and
    stopping one costs seconds per test)."""
    worker = WorkerProcess(workers=2, extra_env=WORKER_ENV)
    yield worker
    worker.stop()
