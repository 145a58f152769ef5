"""Power meters without hardware: a fake sysfs tree for RAPL, a fake pynvml module, a fake clock.

Oracles are closed-form: counter differences in microjoules / millijoules, the exact integral of a
constant or linear power, and the number of calls a window of a given length needs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from dnnmeter.errors import DnnmeterError, InvalidInputError
from dnnmeter.measure.meters import (
    EnergyReading,
    FakeClock,
    FakeMeter,
    MeterError,
    NullMeter,
    NvmlMeter,
    RaplMeter,
    meter_for,
    nvml_device_for,
    rapl_is_available,
    trapezoid_j,
)

# ------------------------------------------------------------------------------------ RAPL


def write_domain(root: Path, dirname: str, name: str, energy_uj: int, max_uj: int = 10**12) -> Path:
    d = root / dirname
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(d: Path, energy_uj: int) -> None:
    (d / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def two_packages(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two packages plus the domains that must be ignored: a sub-domain, MMIO and psys."""
    p0 = write_domain(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    p1 = write_domain(tmp_path, "intel-rapl:1", "package-1", 2_000_000)
    write_domain(tmp_path, "intel-rapl:0:0", "core", 5)
    write_domain(tmp_path, "intel-rapl-mmio:0", "package-0", 7)
    write_domain(tmp_path, "intel-rapl:2", "psys", 9)
    return tmp_path, p0, p1


def test_rapl_sums_package_domains_only(two_packages: tuple[Path, Path, Path]) -> None:
    root, p0, p1 = two_packages
    clock = FakeClock()
    meter = RaplMeter(root, clock=clock)
    assert meter.available and meter.unavailable_reason is None
    assert meter.name == "rapl:package-0+package-1"
    meter.start()
    set_energy(p0, 4_000_000)  # +3 J
    set_energy(p1, 7_000_000)  # +5 J
    for ignored in ("intel-rapl:0:0", "intel-rapl-mmio:0", "intel-rapl:2"):
        set_energy(root / ignored, 10**9)
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(8.0)
    assert reading.duration_s == pytest.approx(2.0)
    assert reading.power_w == pytest.approx(4.0)
    assert reading.samples == 2
    assert "counter" in reading.sampling
    assert reading.source == "rapl:package-0+package-1"


def test_rapl_wrap_around_uses_max_energy_range(tmp_path: Path) -> None:
    d = write_domain(tmp_path, "intel-rapl:0", "package-0", 900_000, max_uj=1_000_000)
    clock = FakeClock()
    meter = RaplMeter(tmp_path, clock=clock)
    meter.start()
    set_energy(d, 100_000)  # wrapped: 100_000 to the top, then 100_000 more
    clock.advance(1.0)
    assert meter.stop().energy_j == pytest.approx(0.2)


def test_rapl_counter_that_did_not_move_reads_none_not_zero(tmp_path: Path) -> None:
    write_domain(tmp_path, "intel-rapl:0", "package-0", 123)
    clock = FakeClock()
    meter = RaplMeter(tmp_path, clock=clock)
    meter.start()
    clock.advance(0.001)
    reading = meter.stop()
    assert reading.energy_j is None and reading.power_w is None
    assert reading.unavailable_reason is not None and "did not advance" in reading.unavailable_reason


def test_rapl_permission_denied_is_unavailable_with_the_fix(two_packages: tuple[Path, Path, Path]) -> None:
    root, _, _ = two_packages

    def read(path: Path) -> str:  # tests run as root, where chmod 000 would not block reads
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    meter = RaplMeter(root, read=read)
    assert not meter.available
    reason = meter.unavailable_reason or ""
    assert reason.startswith(f"permission denied reading {root / 'intel-rapl:0' / 'energy_uj'}")
    assert "run as root" in reason and "sudo chmod o+r" in reason
    with pytest.raises(MeterError, match="permission denied"):
        meter.start()


def test_rapl_unreadable_energy_file_is_unavailable(tmp_path: Path) -> None:
    d = tmp_path / "intel-rapl:0"
    d.mkdir()
    (d / "name").write_text("package-0\n")
    (d / "max_energy_range_uj").write_text("1000\n")
    (d / "energy_uj").mkdir()  # reading a directory fails even as root
    meter = RaplMeter(tmp_path)
    assert not meter.available
    assert f"cannot read {d / 'energy_uj'}" in (meter.unavailable_reason or "")
    assert not rapl_is_available(tmp_path)


@pytest.mark.parametrize("sub", ["", "missing"])
def test_no_rapl_domains_gives_null_meter_with_reason(tmp_path: Path, sub: str) -> None:
    root = tmp_path / sub
    meter = meter_for("cpu", rapl_root=root)
    assert isinstance(meter, NullMeter)
    assert meter.unavailable_reason == f"no RAPL domains under {root}"
    assert not rapl_is_available(root)


def test_meter_for_cpu_returns_rapl_when_readable(two_packages: tuple[Path, Path, Path]) -> None:
    meter = meter_for("cpu", rapl_root=two_packages[0])
    assert isinstance(meter, RaplMeter) and meter.available
    assert rapl_is_available(two_packages[0])


def test_rapl_stop_before_start_is_a_meter_error(two_packages: tuple[Path, Path, Path]) -> None:
    with pytest.raises(MeterError, match="before start"):
        RaplMeter(two_packages[0]).stop()
    assert issubclass(MeterError, DnnmeterError)


# ------------------------------------------------------------------------------------ NVML


class FakeNvml:
    """The slice of pynvml's API that NvmlMeter uses. Energy in mJ, power in mW."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's spelling
        def __str__(self) -> str:
            return "Not Supported"

    def __init__(self, *, counter: bool = True, init_error: str | None = None) -> None:
        self.counter = counter
        self.init_error = init_error
        self.energy_mj = 1_000
        self.power_mw = 150_000
        self.fail_reads = False
        self.handles: list[Any] = []
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self.handles.append(index)
        return ("handle", index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> Any:
        self.handles.append(uuid)
        return ("handle", uuid)

    def nvmlDeviceGetName(self, handle: Any) -> bytes:
        return b"Tesla V100-SXM2-16GB"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        if not self.counter:
            raise self.NVMLError_NotSupported()
        if self.fail_reads:
            raise self.NVMLError("GPU is lost")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        if self.fail_reads:
            raise self.NVMLError("GPU is lost")
        return self.power_mw

    NVML_CLOCK_SM = 1

    def nvmlDeviceGetClockInfo(self, handle: Any, clock: int) -> int:
        if self.fail_reads:
            raise self.NVMLError("GPU is lost")
        return 1980 if clock == self.NVML_CLOCK_SM else 3201


def test_nvml_total_energy_counter() -> None:
    nv, clock = FakeNvml(), FakeClock()
    meter = NvmlMeter(0, nvml=nv, clock=clock)
    assert meter.available and meter.uses_counter
    assert meter.name == "nvml:0" and meter.gpu_name == "Tesla V100-SXM2-16GB"
    meter.start()
    nv.energy_mj += 5_000
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(5.0)
    assert reading.power_w == pytest.approx(2.5)
    assert reading.sampling.startswith("total-energy counter")
    meter.close()
    meter.close()
    assert nv.shutdowns == 1


def test_nvml_without_counter_samples_power_and_integrates() -> None:
    nv, clock = FakeNvml(counter=False), FakeClock()
    meter = NvmlMeter(0, sample_hz=10, nvml=nv, clock=clock)
    assert meter.available and not meter.uses_counter
    meter.start()
    clock.advance(2.0)  # constant power: exact whatever the thread sampled in between
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(300.0)
    assert reading.power_w == pytest.approx(150.0)
    assert reading.samples >= 2
    assert reading.sampling.startswith("sampled power at 10 Hz")


def test_trapezoid_rule_is_exact_for_piecewise_linear_power() -> None:
    assert trapezoid_j([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == pytest.approx(150.0 + 400.0)
    assert trapezoid_j([(5.0, 80.0)]) == 0.0


def test_nvml_init_failure_is_unavailable_with_reason() -> None:
    nv = FakeNvml(init_error="Driver Not Loaded")
    meter = NvmlMeter(0, nvml=nv)
    assert not meter.available
    assert meter.unavailable_reason == "NVML could not open GPU 0: Driver Not Loaded"
    null = meter_for("cuda", nvml=nv)
    assert isinstance(null, NullMeter) and null.unavailable_reason == meter.unavailable_reason
    assert null.stop().energy_j is None
    assert nv.shutdowns == 0  # never initialised, so nothing to shut down


def test_nvml_missing_module_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    meter = meter_for("cuda:0")
    assert isinstance(meter, NullMeter)
    assert meter.unavailable_reason == "nvidia-ml-py is not installed: pip install nvidia-ml-py"


@pytest.mark.parametrize("counter", [True, False])
def test_nvml_read_errors_become_one_line_meter_errors(counter: bool) -> None:
    nv = FakeNvml(counter=counter)
    meter = NvmlMeter(0, nvml=nv, clock=FakeClock())
    meter.start()
    nv.fail_reads = True
    with pytest.raises(MeterError, match=r"^NVML nvmlDeviceGet\w+ failed on GPU 0: GPU is lost$"):
        meter.stop()


def test_cuda_visible_devices_maps_to_nvml_index(monkeypatch: pytest.MonkeyPatch) -> None:
    assert nvml_device_for(1, None) == 1
    assert nvml_device_for(1, "5, 6") == 6
    assert nvml_device_for(0, "GPU-8f2a") == "GPU-8f2a"
    with pytest.raises(MeterError, match="not in CUDA_VISIBLE_DEVICES"):
        nvml_device_for(2, "0,1")
    nv = FakeNvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,6")
    assert meter_for("cuda:1", nvml=nv).name == "nvml:6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f2a")
    assert meter_for("cuda", nvml=nv).name == "nvml:GPU-8f2a"
    assert nv.handles == [6, "GPU-8f2a"]
    assert isinstance(meter_for("cuda:3", nvml=nv), NullMeter)


def test_meter_for_other_devices_and_malformed_strings() -> None:
    meter = meter_for("mps")
    assert isinstance(meter, NullMeter) and "no power meter for device 'mps'" in (meter.unavailable_reason or "")
    with pytest.raises(InvalidInputError, match="cuda:N"):
        meter_for("cuda:x")


# ------------------------------------------------------------------------------------ fake, null, measure


def test_fake_meter_integrates_exactly() -> None:
    clock = FakeClock()
    meter = FakeMeter(50.0, clock)
    meter.start()
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(100.0)
    assert reading.power_w == pytest.approx(50.0)

    ramp = FakeMeter(lambda t: 10.0 + 5.0 * t, clock)  # from t=2 to t=4: 2*10 + 5*(16-4)/2 = 50 J
    ramp.start()
    clock.advance(2.0)
    assert ramp.stop().energy_j == pytest.approx(50.0)


def test_idle_power_sleeps_on_the_meters_clock() -> None:
    clock = FakeClock()
    assert FakeMeter(35.0, clock).idle_power_w(3.0) == pytest.approx(35.0)
    assert clock() == pytest.approx(3.0)


def test_null_meter_reads_none_never_zero() -> None:
    meter = NullMeter("no RAPL domains under /sys/class/powercap")
    assert not meter.available
    meter.start()
    reading = meter.stop()
    assert reading.energy_j is None and reading.power_w is None
    assert reading.source == "none"
    assert reading.unavailable_reason == "no RAPL domains under /sys/class/powercap"
    assert reading.energy_j_per_call is None
    assert meter.idle_power_w(10.0) is None

    calls: list[int] = []
    measured = meter.measure(lambda: calls.append(1), min_window_s=5.0)
    assert measured.calls == 0 and calls == [] and measured.energy_j is None


def test_measure_repeats_until_the_window_is_long_enough() -> None:
    clock = FakeClock()
    meter = FakeMeter(50.0, clock)
    reading = meter.measure(lambda: clock.advance(0.3), min_window_s=1.0)
    assert reading.calls == 4  # 0.3, 0.6, 0.9 are short; 1.2 s is enough
    assert reading.duration_s == pytest.approx(1.2)
    assert reading.energy_j == pytest.approx(60.0)
    assert reading.energy_j_per_call == pytest.approx(15.0)
    assert meter.measure(lambda: clock.advance(0.3), min_window_s=0.0).calls == 1


def test_measure_closes_the_window_when_fn_fails() -> None:
    nv, clock = FakeNvml(counter=False), FakeClock()
    meter = NvmlMeter(0, nvml=nv, clock=clock)

    def boom() -> None:
        raise RuntimeError("forward failed")

    with pytest.raises(RuntimeError, match="forward failed"):
        meter.measure(boom, min_window_s=1.0)
    assert meter._sampler is None  # the sampling thread was stopped
    with pytest.raises(InvalidInputError):
        meter.measure(lambda: None, min_window_s=-1.0)


def test_energy_reading_per_call() -> None:
    reading = EnergyReading(12.0, 1.0, 12.0, "fake", "fake", 2, calls=3)
    assert reading.energy_j_per_call == pytest.approx(4.0)


def test_nvml_sm_clock_is_read_or_none_never_an_error() -> None:
    nv = FakeNvml()
    meter = NvmlMeter(0, nvml=nv, clock=FakeClock())
    assert meter.sm_clock_mhz() == 1980
    nv.fail_reads = True
    assert meter.sm_clock_mhz() is None
    assert NvmlMeter(0, nvml=FakeNvml(init_error="no driver")).sm_clock_mhz() is None
