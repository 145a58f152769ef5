"""The training-memory estimate (analyze(..., mode="train", optimizer=...)): by hand on a
small net, against what autograd saves on real tensors, against the real optimizers' state,
and (integration) against a measured training step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn

from dnnmeter import InvalidInputError, analyze
from dnnmeter.analysis.train_memory import OPTIMIZERS
from dnnmeter.cli import main
from dnnmeter.measure import train_step
from dnnmeter.names import MEMORY_OPTIMIZERS

F32 = 4


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_an_mlp_by_hand() -> None:
    m = analyze(mlp(), inputs=(2, 8), mode="train", optimizer="sgd").training_memory
    assert m is not None
    weights = (8 * 16 + 16 + 16 * 4 + 4) * F32
    assert (m.weight_bytes, m.gradient_bytes, m.optimizer_state_bytes) == (weights, weights, 0) == (848, 848, 0)
    # ReLU saves its output (2x16); the second Linear saves that same tensor and its weight (a parameter)
    assert m.saved_activation_bytes == 2 * 16 * F32
    assert (m.input_bytes, m.buffer_bytes) == (2 * 8 * F32, 0)
    # forward: x, hidden, relu out, logits; backward: the output gradient, then per layer
    # the gradients; the peak can never be below weights + gradients + inputs
    assert m.peak_bytes >= m.weight_bytes + m.gradient_bytes + m.input_bytes
    assert [(r.name, r.weight_bytes, r.saved_activation_bytes) for r in m.layers] == [
        ("0", 144 * F32, 0), ("2", 68 * F32, 0), ("1", 0, 128)]


@pytest.mark.parametrize(("optimizer", "copies"), [("sgd", 0), ("sgd-momentum", 1), ("adam", 2), ("adamw", 2)])
def test_optimizer_state_is_the_real_optimizers(optimizer: str, copies: int) -> None:
    model = mlp()
    m = analyze(model, inputs=(2, 8), mode="train", optimizer=optimizer).training_memory
    assert m is not None
    assert m.optimizer_state_bytes == copies * m.weight_bytes
    # the same optimizer stepped for real on the model's copy keeps that many bytes of tensors
    real = mlp()
    opt = OPTIMIZERS[optimizer](list(real.parameters()))
    real(torch.randn(2, 8)).sum().backward()
    opt.step()
    kept = sum(s.numel() * s.element_size() for st in opt.state.values() for s in st.values() if s.dim())
    assert m.optimizer_state_bytes == kept
    assert m.steady_peak_bytes >= m.peak_bytes
    assert m.steady_peak_bytes >= m.resident_bytes + m.gradient_bytes + m.optimizer_state_bytes
    if not copies:  # no state: every step is the first
        assert m.steady_peak_bytes == m.peak_bytes


def test_frozen_layers_have_no_gradient_or_state_and_the_model_is_untouched() -> None:
    model = mlp()
    model[0].requires_grad_(False)
    before = [p.clone() for p in model.parameters()]
    m = analyze(model, inputs=(2, 8), mode="train", optimizer="adam").training_memory
    assert m is not None
    trainable = (16 * 4 + 4) * F32
    assert (m.gradient_bytes, m.optimizer_state_bytes) == (trainable, 2 * trainable)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad


def test_dtype_scales_every_part() -> None:
    f32 = analyze(mlp(), inputs=(2, 8), mode="train", optimizer="adam").training_memory
    f16 = analyze(mlp(), inputs=(2, 8), mode="train", optimizer="adam", dtype="float16").training_memory
    assert f32 is not None and f16 is not None and f16.dtype == "float16"
    for part in ("weight_bytes", "gradient_bytes", "optimizer_state_bytes", "saved_activation_bytes", "input_bytes"):
        assert getattr(f16, part) * 2 == getattr(f32, part), part
    cast = analyze(mlp(), inputs=(2, 8), dtype="bfloat16")  # inference too: weights and activations
    plain = analyze(mlp(), inputs=(2, 8))
    assert (cast.weight_bytes * 2, cast.activation_bytes * 2, cast.macs) == (plain.weight_bytes,
                                                                              plain.activation_bytes, plain.macs)


def test_saved_activations_are_what_autograd_saves_on_real_tensors() -> None:
    """The oracle: a real CPU forward of resnet18 in train mode, counting the distinct
    storages autograd packs, parameters, buffers (batch norm saves its running statistics)
    and the input left out: they are resident anyway, counted apart."""
    model = torchvision.models.resnet18().train()
    x = torch.randn(2, 3, 64, 64)
    resident = [*model.parameters(), *model.buffers(), x]
    excluded = {t.untyped_storage().data_ptr() for t in resident}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in excluded:
            saved[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    m = analyze(model, inputs=(2, 3, 64, 64), mode="train", optimizer="sgd").training_memory
    assert m is not None
    assert m.saved_activation_bytes == sum(saved.values())
    assert m.gradient_bytes == m.weight_bytes == sum(p.numel() * F32 for p in model.parameters())
    del out


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(InvalidInputError, match="mode='train'"):
        analyze(mlp(), inputs=(2, 8), optimizer="adam")
    with pytest.raises(InvalidInputError, match="unknown optimizer 'rmsprop'"):
        analyze(mlp(), inputs=(2, 8), mode="train", optimizer="rmsprop")
    with pytest.raises(InvalidInputError, match="bad dtype"):
        analyze(mlp(), inputs=(2, 8), mode="train", optimizer="sgd", dtype="int8")
    assert tuple(OPTIMIZERS) == MEMORY_OPTIMIZERS


def test_cli_shows_the_parts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "resnet18", "--mode", "train", "--optimizer", "adam", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    for part in ("training memory, batch 8, float32, adam", "optimizer state", "activations saved for backward",
                 "peak, first step", "peak, later steps"):
        assert part in out
    assert main(["analyze", "resnet18", "--mode", "train", "--optimizer", "adam", "--format", "json"]) == 0
    memory = json.loads(capsys.readouterr().out)[0]["training_memory"]
    assert memory["optimizer_state_bytes"] == 2 * memory["weight_bytes"] == 2 * 11689512 * F32
    assert main(["analyze", "resnet18", "--optimizer", "adam"]) == 2
    assert "mode='train'" in capsys.readouterr().err


def test_cuda_steps_are_weighed_by_max_memory_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 123_000_000)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 150_000_000)
    model = mlp()
    step = train_step.training_step(model, torch.randn(2, 8), "sgd")
    reading = train_step.weigh(lambda: (calls.append("step"), step()), torch.device("cuda"), baseline_bytes=0)
    assert calls == ["sync", "reset", "step", "sync"]
    assert (reading.peak_bytes, reading.reserved_bytes) == (123_000_000, 150_000_000)
    assert "max_memory_allocated" in reading.kind
    assert all(p.grad is not None for p in model.parameters())  # the step ran


def test_the_step_is_weighed_twice_in_fresh_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool's plumbing, with the processes faked: mapped then glibc's defaults on the CPU,
    once on a GPU, and no MALLOC_ setting of the caller's reaches the children."""
    started: list[tuple[list[str], dict[str, str]]] = []

    def run(argv: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        started.append((argv, env))
        mapped = argv[-1] == "--malloc=mapped"
        line = {"peak_bytes": 100 if mapped else 130, "kind": "cpu: ...", "large_blocks_mapped": mapped}
        return subprocess.CompletedProcess(argv, 0, json.dumps(line) + "\n", "")

    monkeypatch.setattr(train_step.subprocess, "run", run)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1")
    peak = train_step.measure_step("resnet18", 8, "sgd")
    assert [argv[-5:] for argv, _ in started] == [["resnet18", "8", "sgd", "cpu", f"--malloc={m}"]
                                                  for m in ("mapped", "default")]
    assert all("MALLOC_MMAP_THRESHOLD_" not in env and "PYTHONPATH" in env for _, env in started)
    assert (peak.peak_bytes, peak.default_malloc_peak_bytes, peak.large_blocks_mapped) == (100, 130, True)
    assert peak.to_dict()["allocator_overhead"] == pytest.approx(1.3)
    started.clear()
    gpu = train_step.measure_step("resnet18", 8, "sgd", device="cuda")
    assert len(started) == 1 and gpu.default_malloc_peak_bytes is None and gpu.allocator_overhead is None
    assert "not measured" in gpu.default_malloc_kind
    with pytest.raises(InvalidInputError, match="unknown optimizer"):
        train_step.measure_step("resnet18", 8, "rmsprop")


@pytest.mark.integration
@pytest.mark.parametrize(("name", "optimizer"), [("resnet18", "sgd"), ("mobilenet_v2", "sgd"), ("resnet18", "adam")])
def test_estimate_within_15_percent_of_a_measured_cpu_step(name: str, optimizer: str,
                                                           record_property: Callable[[str, object], None]) -> None:
    """The estimate is of the tensors' peak (docs/counting.md, "Training memory"): checked
    against the step with glibc mapping large blocks. The same step with glibc's defaults
    (what bench reads) is recorded, not checked: it adds the allocator's retention."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "dnnmeter.measure.train_step", name, "8", optimizer], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["large_blocks_mapped"], "the check needs glibc (see dnnmeter.measure.train_step)"
    m = analyze(name, batch_size=8, mode="train", optimizer=optimizer).training_memory
    assert m is not None
    # the measured step is the second one: its optimizer state exists from the start
    estimate = m.steady_peak_bytes
    assert abs(estimate - measured["peak_bytes"]) <= 0.15 * measured["peak_bytes"], (estimate, measured)
    default = measured["default_malloc_peak_bytes"]
    record_property("estimate_bytes", estimate)
    record_property("mapped_peak_bytes", measured["peak_bytes"])
    record_property("default_malloc_peak_bytes", default)
    print(f"{name} {optimizer}: estimate {estimate / 1e6:.1f} MB, mapped {measured['peak_bytes'] / 1e6:.1f} MB, "
          f"glibc defaults {default / 1e6:.1f} MB")
    # sanity only: the weights and gradients are resident at the peak whatever the allocator keeps
    assert isinstance(default, int) and default >= m.weight_bytes + m.gradient_bytes, (default, m)


@pytest.mark.integration
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (never run yet: none where it was written)")
def test_estimate_within_15_percent_of_cuda_max_memory_allocated() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "dnnmeter.measure.train_step", "resnet18", "8", "sgd", "cuda"],
                          env=env, capture_output=True, text=True, timeout=300, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert "max_memory_allocated" in measured["kind"] and measured["default_malloc_peak_bytes"] is None
    m = analyze("resnet18", batch_size=8, mode="train", optimizer="sgd").training_memory
    assert m is not None
    assert abs(m.steady_peak_bytes - measured["peak_bytes"]) <= 0.15 * measured["peak_bytes"], (m, measured)
