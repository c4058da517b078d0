"""A circuit breaker per target system, so one dead target does not tie up every worker."""

import threading
import time

from connectors.base import ErrorClass


class CircuitBreaker:
    """Per process: after repeated connection-level failures a system gets a rest, so one dead
    target does not tie up workers with timeouts. Deferred deliveries use no attempts."""

    THRESHOLD = 5
    COOLDOWN_SECONDS = 10.0
    TRIPPING = {ErrorClass.UNREACHABLE, ErrorClass.TIMEOUT, ErrorClass.SERVER_ERROR}

    def __init__(self) -> None:
        self.failures: dict[int, int] = {}
        self.open_until: dict[int, float] = {}
        self.lock = threading.Lock()

    def allows(self, system_id: int) -> bool:
        return self.open_until.get(system_id, 0.0) <= time.monotonic()

    def record(self, system_id: int, error_class: ErrorClass | None) -> None:
        with self.lock:
            if error_class in self.TRIPPING:
                count = self.failures.get(system_id, 0) + 1
                self.failures[system_id] = count
                if count >= self.THRESHOLD:
                    self.open_until[system_id] = time.monotonic() + self.COOLDOWN_SECONDS
                    self.failures[system_id] = self.THRESHOLD - 1  # one probe after the rest
            elif error_class is None:
                self.failures.pop(system_id, None)
                self.open_until.pop(system_id, None)


breaker = CircuitBreaker()
