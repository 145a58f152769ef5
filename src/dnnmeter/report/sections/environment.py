"""The end of the page: the runs in the store, the environment measured in, and the method.

Read from the typed records (:class:`~dnnmeter.results.records.StudyData`)."""

from __future__ import annotations

from html import escape

from dnnmeter.report.format import num
from dnnmeter.report.markup import cell, head, plain, row, table
from dnnmeter.report.sections import Page
from dnnmeter.results.records import StudyData


def runs_html(page: Page) -> str:
    """Time per image at batch 1 in every run configuration the store holds (runs and machines;
    a fleet's runs by machine type)."""
    runs = page.data.runs
    if len(runs) < 2:
        return ""
    header_cells = "".join(f'<th class="l">{escape(r.machine_type or r.machine or "?")}<br>{escape(str(r.device))}, '
                           f'{escape(str(r.threads))} thread(s), {escape(str(r.heap or "glibc"))} heap, '
                           f'{escape(str(r.first_utc))}</th>' for r in runs)
    rows = []
    for m in page.data.models:
        cells = [f'<td class="l">{escape(m.model)}</td>']
        for r in runs:
            value = (r.latency_s_per_image.get(m.model) or {}).get("1")
            cells.append(cell(num(value, 2, 1e3)) if value is not None else '<td class="na">-</td>')
        rows.append(row(cells))
    return ("<h2>Runs in this store</h2><p>Milliseconds per image at batch size 1, median, for every "
            "machine and setting that measured these models into this store.</p>"
            + table(f'<tr><th class="l">network</th>{header_cells}</tr>', rows))


def html(page: Page) -> str:
    """The environment the bench points were measured in (one per study)."""
    env = page.data.environment
    if not env:
        return "<h2>Environment</h2><p>No environment was recorded.</p>"
    rows = [row([f'<td class="l">{escape(str(k))}</td>', f'<td class="l">{escape(plain(v))}</td>'])
            for k, v in env.items()]
    return "<h2>Environment</h2>" + table(head("field", "value", left=2), rows)


def distinct(data: StudyData, field: str) -> list[str]:
    """The different values of a bench point's ``field`` over the study, in order."""
    values = (getattr(p, field) for m in data.models for p in m.bench)
    return list(dict.fromkeys(str(v) for v in values if v))


def methodology_html(page: Page) -> str:
    data = page.data
    sources = distinct(data, "power_source")
    power = ("power source: " + ", ".join(sources)) if sources else \
        ("no power was measured: " + "; ".join(distinct(data, "power_unavailable_reason") or ["no meter"]))
    items = [
        "MAC = one multiply-accumulate. FLOPs = 2 x MACs + element-wise FLOPs (norm, activation, pooling, add); "
        "the table's GFLOPs are 2 x GMACs, like the seed study's. torchvision's published \"GFLOPS\" are GMACs.",
        "Operations are counted per image on the meta device at the model's input size, batch size 1.",
        "Latency is the median of the timed samples at each batch size (p10 and p90 are in results.json); "
        "time per image is that median divided by the batch size; images/s is its inverse.",
        "Memory: " + ("; ".join(distinct(data, "memory_kind")) or "not measured") + ".",
        "C heap: " + (", ".join(distinct(data, "heap")) or "none measured") + " (steady: glibc's trim and mmap "
        "thresholds pinned, so that no point pays page faults by the process's allocation history; glibc: as "
        "glibc leaves them; docs/bench.md).",
        power[0].upper() + power[1:] + ". A value that could not be measured is shown as a dash, never 0.",
        "Accuracy is a fraction shown in %; each figure is marked measured, published or estimated.",
        "A point whose run failed (out of memory, error) is left out of the fits and figures and named in the "
        "figure's caption.",
    ]
    return "<h2>Methodology and conventions</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"
