"""The timing loop with a fake clock: blocks, stopping rules, statistics. No real timings."""

from __future__ import annotations

import pytest

from dnnmeter.measure.timing import TimingSettings, percentile, spread, time_calls


class FakeClock:
    """Each call of the timed function advances time by the next of ``durations``."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = durations
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def test_percentile_and_spread() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 50) == 3.0 and percentile(values, 10) == pytest.approx(1.4)
    assert spread(values) == pytest.approx((4.0 - 2.0) / 3.0)
    assert spread([2.0]) == float("inf")


def test_steady_calls_stop_after_the_minimum_samples() -> None:
    clock = FakeClock([0.05])
    t = time_calls(clock.work, TimingSettings(min_samples=7, warmup_s=0.1), clock=clock)
    assert len(t.samples_s) == 7 and t.calls_per_sample == 1
    assert t.median_s == pytest.approx(0.05) and t.stable is True and t.spread == 0
    assert t.cold_s == pytest.approx(0.05) and t.warmup_calls == 2


def test_short_calls_are_timed_in_blocks() -> None:
    clock = FakeClock([0.001])
    t = time_calls(clock.work, TimingSettings(min_block_s=0.01, warmup_s=0.01), clock=clock)
    assert t.calls_per_sample == 10
    assert t.median_s == pytest.approx(0.001)


def test_cold_call_is_reported_apart() -> None:
    clock = FakeClock([1.0] + [0.02] * 10_000)
    t = time_calls(clock.work, TimingSettings(warmup_s=0.1), clock=clock)
    assert t.cold_s == pytest.approx(1.0)
    assert t.median_s == pytest.approx(0.02)


def test_noise_keeps_sampling_until_the_budget_and_is_flagged() -> None:
    durations = [0.01, 0.03] * 10_000  # alternating: the spread never falls
    clock = FakeClock(durations)
    settings = TimingSettings(time_budget_s=1.0, warmup_s=0.05, min_block_s=0.001)
    t = time_calls(clock.work, settings, clock=clock)
    assert not t.stable and t.spread > 0.1
    assert 0.9 <= t.elapsed_s <= 1.2
    assert len(t.samples_s) > settings.min_samples


def test_sync_is_called_around_every_block() -> None:
    clock = FakeClock([0.05])
    syncs: list[float] = []
    t = time_calls(clock.work, TimingSettings(warmup_s=0.05), clock=clock, sync=lambda: syncs.append(clock.now))
    assert len(syncs) >= 2 * len(t.samples_s)


def test_a_custom_block_timer_is_used_for_samples() -> None:
    clock = FakeClock([0.05])
    blocks: list[int] = []

    def block(call, n):  # type: ignore[no-untyped-def]
        blocks.append(n)
        for _ in range(n):
            call()
        return 0.04  # e.g. device time, shorter than the host's

    t = time_calls(clock.work, TimingSettings(warmup_s=0.05), clock=clock, block=block)
    assert blocks and t.median_s == 0.04 and t.cold_s == pytest.approx(0.05)


def test_cuda_event_block_with_fake_events(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dnnmeter.measure.timing import cuda_event_block

    clock = FakeClock([0.002])

    class FakeEvent:
        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            self.t = 0.0

        def record(self) -> None:
            self.t = clock.now

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, other: FakeEvent) -> float:
            return (other.t - self.t) * 1e3  # milliseconds, as CUDA reports

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    per_call = cuda_event_block("cuda:0")(clock.work, 5)
    assert per_call == pytest.approx(0.002)


def test_slow_calls_still_get_three_samples_and_no_verdict() -> None:
    clock = FakeClock([5.0])
    t = time_calls(clock.work, TimingSettings(time_budget_s=0.5, warmup_s=0.1), clock=clock)
    # Three identical samples have spread 0, yet three are too few to call the point stable.
    assert len(t.samples_s) == 3 and t.spread == 0
    assert t.stable is None and t.stable_unknown_reason.startswith("only 3 samples")


@pytest.mark.parametrize(("samples", "stable"), [(6, None), (7, True)])
def test_the_stability_verdict_needs_seven_samples(samples: int, stable: bool | None) -> None:
    clock = FakeClock([0.05])
    settings = TimingSettings(min_samples=samples, max_samples=samples, warmup_s=0.1)
    t = time_calls(clock.work, settings, clock=clock)
    assert len(t.samples_s) == samples and t.spread == 0
    assert t.stable is stable
    assert (t.stable_unknown_reason is None) == (stable is not None)


def test_device_timed_blocks_run_until_the_clocks_settle() -> None:
    # A GPU ramping its clocks: per-call times fall, then hold; sampling starts once two
    # settling blocks in a row agree within 2%.
    clock = FakeClock([0.05])
    ramp = iter([0.010, 0.008, 0.006, 0.005, 0.005] + [0.005] * 100)

    def block(call, n):  # type: ignore[no-untyped-def]
        for _ in range(n):
            call()
        return next(ramp)

    t = time_calls(clock.work, TimingSettings(warmup_s=0.05, settle_max_s=10.0), clock=clock, block=block)
    assert t.settled is True and t.settle_blocks == 5
    assert t.median_s == 0.005  # no sample taken while the clocks were still rising


def test_settling_gives_up_at_its_limit_and_says_so() -> None:
    clock = FakeClock([0.05])
    ramp = iter(0.010 * 0.9**k for k in range(1000))  # never two within 2%

    def block(call, n):  # type: ignore[no-untyped-def]
        for _ in range(n):
            call()
        return next(ramp)

    t = time_calls(clock.work, TimingSettings(warmup_s=0.05, settle_max_s=0.5), clock=clock, block=block)
    assert t.settled is False and 2 <= t.settle_blocks <= 12


def test_host_timed_calls_do_not_settle() -> None:
    clock = FakeClock([0.05])
    t = time_calls(clock.work, TimingSettings(warmup_s=0.05), clock=clock)
    assert t.settled is None and t.settle_blocks == 0
