"""How many calls this process keeps waiting on each target: a window that starts at one call,
grows by one with each success (doubling every round trip) up to the target's `calls_at_once`,
and halves when the target fails in a way that more calls would only make worse.

A target that is down, or just came back, gets one call at a time from each worker, so the
circuit breaker opens after the calls it needs and not after a burst; a healthy one is soon
called as often at once as it allows."""

import threading

from connectors.base import ErrorClass

OVERLOADED = frozenset(
    {
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.UNREACHABLE,
        ErrorClass.RATE_LIMITED,
        ErrorClass.OUTCOME_UNKNOWN,
    }
)


class CallWindows:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.windows: dict[int, int] = {}

    def allowed(self, target) -> int:
        """How many calls to `target` may be waiting at once now."""
        return min(self.windows.get(target.pk, 1), target.calls_at_once)

    def record(self, target, *, succeeded: bool, error_class: ErrorClass | None) -> None:
        with self.lock:
            window = min(self.windows.get(target.pk, 1), target.calls_at_once)
            if succeeded:
                self.windows[target.pk] = min(window + 1, target.calls_at_once)
            elif error_class in OVERLOADED:
                self.windows[target.pk] = max(1, window // 2)

    def forget(self) -> None:
        with self.lock:
            self.windows.clear()


call_windows = CallWindows()
