"""The hardware command: accesses, reuse, energy, systolic arrays, the roofline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dnnmeter.cli import common
from dnnmeter.cli.choices import DATAFLOWS, ENERGY_TABLES
from dnnmeter.errors import DnnmeterError


def _cmd_hardware(args: argparse.Namespace) -> int:
    from dnnmeter.analysis import parse_input_size
    from dnnmeter.hardware import estimate_hardware, measure_ceilings, roofline
    from dnnmeter.report.hardware_figures import draw_hardware_figures
    from dnnmeter.report.hardware_text import hardware_tables

    if args.model is None and args.topology is None:
        raise DnnmeterError("give a MODEL or --topology SCALESIM.csv")
    model = None if args.model is None else common.resolve_all([args.model])[0]
    size, batch = common.image_input(args, "hardware", "the systolic array and access models take one image input")
    size, batch = parse_input_size(size), batch or args.batch_size
    result = estimate_hardware(model, input_size=size, batch_size=batch, array=args.array, dataflow=args.dataflow,
                               sram_kb=args.sram_kb, bits=args.bits, energy_table=args.energy_table,
                               topology=args.topology, export_scalesim=args.export_scalesim)
    record = result.record()
    data = record.to_dict()
    roof = None
    if args.roofline:
        if model is None:
            raise DnnmeterError("--roofline runs the model; give a MODEL, not only a topology")
        with common.progress(True) as progress:
            progress.add_task("measuring this machine's ceilings and the model's layers", total=None)
            ceilings = measure_ceilings("cpu", threads=args.threads)
            roof = roofline(model, ceilings, input_size=size, batch_size=batch, threads=args.threads).record()
        data["roofline"] = roof.to_dict()
    if args.figures:
        for figure in draw_hardware_figures(record, roof, args.figures):
            print(f"dnnmeter: figure {figure.png or figure.skipped_reason}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        console = common.console()
        for table in hardware_tables(record, roof, per_layer=args.per_layer):
            console.print(table)
    return 0


def add_commands(sub: Any) -> None:
    """Add this area's commands to the ``dnnmeter`` parser."""
    hw = sub.add_parser(
        "hardware", help="memory accesses and data reuse, energy estimates, systolic arrays, roofline",
        description="The hardware cost of MODEL without running it: memory accesses naive and with "
        "each kind of data reuse, the DRAM lower bound, energy estimates (labelled estimated), and a "
        "systolic array's cycles, utilisation and SRAM/DRAM traffic per conv/FC/matmul layer. "
        "--roofline also measures this machine's ceilings and places each layer on the roofline.",
    )
    hw.add_argument("model", nargs="?", metavar="MODEL", help="a zoo name, ONNX file or module:callable")
    hw.add_argument("--topology", metavar="SCALESIM.csv", help="read the layers from a SCALE-Sim topology instead")
    hw.add_argument("--batch-size", type=common.positive_int, default=1)
    common.add_input_argument(hw)
    hw.add_argument("--input-size", help="N (3 x N x N) or C,H,W; default: the model's own")
    hw.add_argument("--array", default="32x32", metavar="RxC", help="systolic array rows x columns (default 32x32)")
    hw.add_argument("--dataflow", choices=DATAFLOWS, default="os",
                    help="output-, weight- or input-stationary (default os)")
    hw.add_argument("--sram-kb", default="64", metavar="N|I,F,O",
                    help="SRAM per operand in KB: one size or ifmap,filter,ofmap (default 64)")
    hw.add_argument("--bits", type=common.positive_int, default=8, help="bits per word (default 8)")
    hw.add_argument("--energy-table", default="eyeriss", metavar="|".join((*ENERGY_TABLES, "FILE")))
    hw.add_argument("--export-scalesim", metavar="DIR", type=common.output_folder,
                    help="write SCALE-Sim 3 topology, layout and config files")
    hw.add_argument("--roofline", action="store_true", help="measure the ceilings and place each layer (runs the model)")
    hw.add_argument("--threads", type=common.positive_int, help="CPU threads for --roofline (default: torch's)")
    hw.add_argument("--figures", metavar="DIR", type=common.output_folder,
                    help="draw the accesses, utilisation and roofline figures here")
    hw.add_argument("--per-layer", action=argparse.BooleanOptionalAction, default=True, help="per-layer table")
    common.add_format_and_run(hw, _cmd_hardware)
