"""The report: figures and one self-contained HTML page, checked on files and in a real browser."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dnnmeter.errors import InvalidInputError
from dnnmeter.report import families
from dnnmeter.report.figures import render_figures
from dnnmeter.report.fits import compute_fits
from dnnmeter.report.html import render_all, write_report

FIXTURE = Path(__file__).parent / "fixtures" / "study_small.json"
POWER_FIGURES = {"power_vs_batch", "gmacs_vs_power", "power_vs_time"}
DRAWN_WITHOUT_POWER = {"top1_per_network", "top1_vs_gmacs", "time_vs_batch", "memory_vs_batch", "memory_vs_params",
                       "gmacs_vs_time", "top1_vs_images_per_s", "top1_per_mparam", "time_vs_top1", "conv_fc_split"}
NO_RAPL = "no RAPL domains under /sys/class/powercap"


def study() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def with_power(data: dict[str, Any]) -> dict[str, Any]:
    """The fixture as if a meter had been there: power rises a little with batch size."""
    data = copy.deepcopy(data)
    for i, m in enumerate(data["models"]):
        for p in m["bench"]:
            if p["status"] == "ok":
                p["power_w"] = 20.0 + 2.0 * i + 3.0 * p["batch_size"].bit_length()
                p["idle_power_w"] = 8.0
                p["energy_j_per_image"] = p["power_w"] * p["latency_s_per_image"]
                p["power_source"], p["power_unavailable_reason"] = "rapl:package-0", None
    return data


def render(tmp: Path, data: dict[str, Any]) -> tuple[Path, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "results.json").write_text(json.dumps(data))
    out = render_all(tmp)
    return out, out.read_text(encoding="utf-8")


def page_only(tmp: Path, data: dict[str, Any], names: set[str] | None = None) -> tuple[Path, str]:
    """The report with only the figures ``names`` (none by default): the fast way to test the page."""
    figures = render_figures(data, tmp / "figures", names=names or set())
    out = write_report(data, figures, compute_fits(data), tmp / "report.html")
    return out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return render(tmp_path_factory.mktemp("study"), study())


@pytest.fixture(scope="module")
def powered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return page_only(tmp_path_factory.mktemp("powered"), with_power(study()), POWER_FIGURES)


# --- files -------------------------------------------------------------------------------------


def test_render_all_writes_the_report_and_every_figure_with_data(report: tuple[Path, str]) -> None:
    out, _ = report
    assert out == out.parent / "report.html"
    figures = out.parent / "figures"
    for name in DRAWN_WITHOUT_POWER:
        png, svg = figures / f"{name}.png", figures / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, name
        assert svg.read_text()[:200].lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000], name
    for name in POWER_FIGURES:
        assert not (figures / f"{name}.png").exists() and not (figures / f"{name}.svg").exists()


def test_power_figures_are_skipped_with_the_meters_reason(report: tuple[Path, str], tmp_path: Path) -> None:
    results = {r.name: r for r in render_figures(study(), tmp_path, names=POWER_FIGURES)}
    assert set(results) == POWER_FIGURES
    for name in POWER_FIGURES:
        assert results[name].skipped_reason == f"no power readings: {NO_RAPL}"
        assert results[name].png is None and results[name].svg is None
    _, html = report
    assert f"no power readings: {NO_RAPL}" in html
    assert html.count("Not drawn:") == len(POWER_FIGURES)


def test_failed_points_are_named_in_the_caption(report: tuple[Path, str]) -> None:
    _, html = report
    assert "vgg16 at batch size 4 (oom)" in html and "mobilenet_v2 at batch size 4 (error)" in html


def test_with_a_power_meter_the_power_figures_are_drawn(powered: tuple[Path, str]) -> None:
    out, html = powered
    for name in POWER_FIGURES:
        assert (out.parent / "figures" / f"{name}.png").stat().st_size > 10_000
    assert "Not drawn:" not in html
    assert "rapl:package-0" in html
    # resnet18 is the third model: 20 + 2 x 2 + 3 x bit_length(1) = 27 W at batch size 1
    assert re.search(r"<td>27<sup class=\"lab lab-measured\"", html)


def test_without_accuracy_the_accuracy_figures_are_skipped(tmp_path: Path) -> None:
    data = study()
    for m in data["models"]:
        m["accuracy"] = None
    wanted = {"top1_per_network", "top1_vs_gmacs", "top1_vs_images_per_s", "top1_per_mparam", "time_vs_top1",
              "memory_vs_params"}
    results = {r.name: r for r in render_figures(data, tmp_path, names=wanted)}
    for name in ("top1_per_network", "top1_vs_gmacs", "top1_vs_images_per_s", "top1_per_mparam", "time_vs_top1"):
        assert (results[name].skipped_reason or "").startswith("no accuracy"), name
    assert results["memory_vs_params"].png is not None


# --- the page ----------------------------------------------------------------------------------


def test_the_page_loads_nothing_from_outside(report: tuple[Path, str]) -> None:
    _, html = report
    lowered = html.lower()
    for needle in ('src="http', "src='http", "<link", "@import", "url(http", "<iframe"):
        assert needle not in lowered, needle
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(DRAWN_WITHOUT_POWER)


def test_the_table_lists_every_model_with_its_sources(report: tuple[Path, str]) -> None:
    _, html = report
    summary = html.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    for m in study()["models"]:
        assert f'<td class="l">{m["model"]}</td>' in summary
    assert 'title="published">P</sup>' in summary and 'title="measured">M</sup>' in summary
    assert "69.76" in summary  # resnet18's published top-1, in %
    assert "3.628" in summary  # resnet18: 2 x 1.814 GMACs


def test_the_page_says_what_was_run_and_on_what(report: tuple[Path, str]) -> None:
    _, html = report
    assert "batch sizes 1, 2, 4" in html
    assert "default: half of the 2 available cores" in html
    assert "Intel(R) Xeon(R) Processor @ 2.50GHz" in html
    assert "FLOPs = 2 x MACs + element-wise FLOPs" in html
    assert "peak RSS above the pre-model baseline" in html


def test_fits_and_front_are_in_the_page(report: tuple[Path, str], tmp_path: Path) -> None:
    _, html = report
    assert "ms per GMAC" in html and "time per image = a x GMACs + b" in html
    assert "mobilenet_v2 (72.15 %, 19.5 ms), resnet50 (80.86 %, 155 ms)" in html
    data = study()
    data["settings"]["max_latency_ms"] = 100
    _, budgeted = page_only(tmp_path, data)
    assert "The most accurate model that fits is <b>mobilenet_v2</b>" in budgeted
    assert "latency 155 ms &gt; 100 ms" in budgeted


def test_text_from_the_data_is_escaped(tmp_path: Path) -> None:
    data = study()
    data["models"] = data["models"][:2]
    data["models"][0]["model"] = "<script>alert(1)</script>"
    data["environment"]["cpu_model"] = "A & B <cpu>"
    _, html = page_only(tmp_path, data, {"top1_per_network"})
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B &lt;cpu&gt;" in html


def test_a_missing_results_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="results.json"):
        render_all(tmp_path)


def test_a_results_file_that_does_not_fit_the_records_is_a_one_line_error(tmp_path: Path) -> None:
    data = study()
    del data["models"][0]["bench"][0]["batch_size"]
    data["models"][1]["added_by_a_later_version"] = 1  # tolerated
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInputError, match=r"no 'batch_size' in the stored data.*dnnmeter report --out") as caught:
        render_all(tmp_path)
    assert "\n" not in str(caught.value)


def test_an_unknown_figure_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="known: top1_per_network"):
        render_figures(study(), tmp_path, names={"top1_per_netwrk"})


# --- family colours ----------------------------------------------------------------------------


def test_family_colours_are_fixed_shared_by_variants_and_stable_for_others() -> None:
    assert families.colour("resnet") == families.FAMILY_COLOURS["resnet"]
    assert families.colour("mobilenetv2") == families.colour("mobilenetv3") == families.colour("mobilenet")
    assert families.colour("vision_transformer") == families.colour("vit")
    assert families.colour("some_new_net") == families.colour("some_new_net")
    assert families.colour("some_new_net") in families.PALETTE
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in families.FAMILY_COLOURS.values())
    known = ["alexnet", "vgg", "resnet", "inception", "googlenet", "xception", "mobilenet", "tiny_alexnet"]
    assert len({families.colour(f) for f in known}) == len(known)


# --- in a real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# .ci/run installs chromium (make chromium) and sets this, so that a missing browser fails there.
REQUIRE_CHROMIUM = "DNNMETER_REQUIRE_CHROMIUM"


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    """The installed Chromium; never installed from a test (`make chromium` does it)."""
    path = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if path is None:
        why = f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); `make chromium` installs it"
        if os.environ.get(REQUIRE_CHROMIUM) == "1":
            pytest.fail(f"{why}; {REQUIRE_CHROMIUM}=1 says this run needs it")
        pytest.skip(why)
    yield path


def run_chromium(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def page_errors(stderr: str) -> list[str]:
    """Messages from the page itself (console output, uncaught errors), not chromium's own noise."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.browser
@pytest.mark.timeout(600)  # two Chromium runs of up to 90 s each, and the report rendered first
def test_the_report_renders_in_headless_chromium(chromium: str, report: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = report
    url = out.resolve().as_uri()
    dom = run_chromium(chromium, tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    n = len(DRAWN_WITHOUT_POWER)
    assert f'data-figures-ok="{n}/{n}"' in dom.stdout, dom.stderr[-2000:]
    assert page_errors(dom.stderr) == []
    shot = tmp_path / "report.png"
    run_chromium(chromium, tmp_path, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,4000", url)
    assert shot.stat().st_size > 50_000  # kept in pytest's tmp_path for a person to look at
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (4000, 1280) and pixels.std() > 0.05  # not a blank page
