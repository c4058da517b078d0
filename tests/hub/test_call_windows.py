"""The window of calls at once per target: slow start, growth to the target's bound, back-off."""

from types import SimpleNamespace

from connectors.base import ErrorClass
from hub.pipeline.concurrency import CallWindows


def target(calls_at_once: int = 8):
    return SimpleNamespace(pk=1, calls_at_once=calls_at_once)


def test_a_target_starts_at_one_call_and_grows_by_one_with_each_success_up_to_its_bound():
    windows, system = CallWindows(), target(4)
    assert windows.allowed(system) == 1
    for expected in (2, 3, 4, 4):
        windows.record(system, succeeded=True, error_class=None)
        assert windows.allowed(system) == expected


def test_failures_that_more_calls_would_worsen_halve_it_and_others_leave_it():
    windows, system = CallWindows(), target(16)
    for _ in range(15):
        windows.record(system, succeeded=True, error_class=None)
    assert windows.allowed(system) == 16
    windows.record(system, succeeded=False, error_class=ErrorClass.SERVER_ERROR)
    assert windows.allowed(system) == 8
    windows.record(system, succeeded=False, error_class=ErrorClass.REJECTED)  # a 4xx says nothing of load
    assert windows.allowed(system) == 8
    for error_class in (
        ErrorClass.TIMEOUT,
        ErrorClass.RATE_LIMITED,
        ErrorClass.UNREACHABLE,
        ErrorClass.TIMEOUT,
    ):
        windows.record(system, succeeded=False, error_class=error_class)
    assert windows.allowed(system) == 1  # never below one


def test_a_lower_bound_set_later_applies_at_once():
    windows, system = CallWindows(), target(32)
    for _ in range(40):
        windows.record(system, succeeded=True, error_class=None)
    assert windows.allowed(system) == 32
    assert windows.allowed(target(3)) == 3
