#!/usr/bin/env python
"""Host-side launch jitter on a GPU: torch.utils.benchmark against itself and against
dnnmeter's timing, in interleaved rounds, on resnet50 at batch 1 and 8.

    python benchmarks/launch_jitter.py OUT.json [--rounds 6] [--seconds 0.5]

At small batches a GPU waits on the host's kernel launches, so a timing there measures the
host as much as the GPU. This shows how much one round of either timer moves from the next;
gpu_check.py compares the timers over interleaved rounds because of it. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.utils.benchmark as tub
import torchvision

from dnnmeter.measure.timing import TimingSettings, cuda_event_block, time_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=0.5, help="each timer's time per round")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("launch_jitter.py: no CUDA GPU here; it measures a GPU's launch-bound regime")
    model = torchvision.models.resnet50().cuda().eval()
    block = cuda_event_block(torch.device("cuda"))
    rows = []
    with torch.inference_mode():
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224, device="cuda")
            for k in range(args.rounds):
                theirs = tub.Timer("m(x)", globals={"m": model, "x": x}).blocked_autorange(min_run_time=args.seconds)
                ours = time_calls(lambda: model(x), TimingSettings(time_budget_s=args.seconds),
                                  sync=torch.cuda.synchronize, block=block)
                rows.append({"batch": batch, "round": k, "timer_ms": theirs.median * 1e3,
                             "dnnmeter_ms": ours.median_s * 1e3, "dnnmeter_spread": ours.spread})
                print(rows[-1], flush=True)
    with open(args.out, "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
