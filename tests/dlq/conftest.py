"""What the dead-letter tests share: the HR -> inventory flow most of them use."""

import pytest

from tests.dlq.letter_helpers import keep_tasks
from tests.sandbox_helpers import hr_to_inventory_accounts

queued = pytest.fixture(keep_tasks, name="queued")


@pytest.fixture
def flow(fresh_sandbox):
    return hr_to_inventory_accounts(fresh_sandbox, event_type="employee.hired")
