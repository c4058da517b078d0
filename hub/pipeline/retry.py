"""The retry policy: pure arithmetic, no database and no clock of its own."""

from dataclasses import dataclass, field

from connectors.base import RETRYABLE


def default_retry_classes() -> list[str]:
    """The error classes a new flow retries: every failure that may pass by itself."""
    return sorted(str(error_class) for error_class in RETRYABLE)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before retry number n, which failures to retry, and when to give up."""

    base_seconds: float = 2.0
    max_seconds: float = 3600.0
    max_attempts: int = 8
    max_age_seconds: float = 24 * 3600
    retry_on: frozenset[str] = field(default_factory=lambda: frozenset(default_retry_classes()))

    def backoff(self, attempt_number: int) -> float:
        """The cap on the wait before retry `attempt_number` (1 = first retry): exponential, capped."""
        exponent = min(max(attempt_number - 1, 0), 64)  # 2**64 s is past any cap; avoids overflow
        return min(self.max_seconds, self.base_seconds * 2**exponent)

    def delay(self, attempt_number: int, *, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait, with full jitter: `jitter` is a draw from [0, 1] that picks a point
        between no wait and the backoff, so a burst's retries spread evenly instead of arriving
        together. A target's Retry-After is a floor, never shortened."""
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")
        delay = self.backoff(attempt_number) * jitter
        if retry_after is not None and retry_after > delay:
            delay = float(retry_after)
        return delay

    def retries(self, error_class: str) -> bool:
        return str(error_class) in self.retry_on

    def give_up_reason(self, *, attempts: int, age_seconds: float) -> str:
        """Why a retryable failure should not be retried again ("" to retry)."""
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts"
        if age_seconds >= self.max_age_seconds:
            return f"gave up: the event is {age_seconds / 3600:.1f} h old"
        return ""
