"""Hugging Face transformers models as hf:NAME: built from a local config.json, the local
HF cache or the library's default configs, never downloaded; counted (attention through
SDPA) against torch's FlopCounterMode on a meta copy and by hand; benchmarked on token ids."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

transformers = pytest.importorskip("transformers")

from dnnmeter import analyze  # noqa: E402
from dnnmeter.analysis import TensorSpec  # noqa: E402
from dnnmeter.cli import main  # noqa: E402
from dnnmeter.errors import UnknownModelError  # noqa: E402
from dnnmeter.measure import benchmark  # noqa: E402
from dnnmeter.zoo import create_model, hf_source, list_models  # noqa: E402

TINY_BERT = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 100, "hidden_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64}


@pytest.fixture
def tiny_bert(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(TINY_BERT))
    return tmp_path


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # nothing cached: defaults or files only


def torch_macs(model: torch.nn.Module, batch: int, seq_len: int) -> int:
    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(input_ids=torch.zeros(batch, seq_len, dtype=torch.int64, device="meta"))
    return counter.get_total_flops() // 2


def test_bert_base_defaults_by_hand_and_against_torch() -> None:
    a = analyze("hf:bert-base-uncased")
    assert (a.params, a.inputs, a.complete) == (109_482_240, "input_ids=1x128:int64", True)
    layers, d, ff, seq = 12, 768, 3072, 128
    linear = layers * seq * (4 * d * d + 2 * d * ff) + d * d  # + the pooler on one token
    attention = layers * 2 * seq * seq * d  # scores and weighted sum, through SDPA
    assert a.by_kind["matmul"].macs == attention
    assert a.macs == linear + attention == 11_174_215_680
    assert a.macs == torch_macs(create_model("hf:bert-base-uncased"), 1, 128)


def test_gpt2_ties_its_head_and_counts_like_torch() -> None:
    a = analyze("hf:gpt2", seq_len=64, batch_size=2)
    assert a.params == 124_439_808  # the LM head shares the token embedding
    model = create_model("hf:gpt2")
    assert model.config._attn_implementation == "sdpa"
    assert a.macs == torch_macs(model, 2, 64) and a.inputs == "input_ids=2x64:int64"


def test_a_local_config_and_a_real_weight_model_agree(tiny_bert: Path) -> None:
    by_path = analyze(f"hf:{tiny_bert}", seq_len=16)
    by_file = analyze(f"hf:{tiny_bert / 'config.json'}", seq_len=16)
    real = transformers.BertModel(transformers.BertConfig(**TINY_BERT))  # real weights, counted on meta stand-ins
    direct = analyze(real, inputs={"input_ids": TensorSpec((1, 16), torch.int64)})
    assert by_path.macs == by_file.macs == direct.macs == torch_macs(real, 1, 16)
    assert by_path.params == direct.params == sum(p.numel() for p in real.parameters())
    assert by_path.complete and "config" in hf_source.entry(f"hf:{tiny_bert}").description  # type: ignore[union-attr]


def test_never_downloads_and_says_what_it_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(UnknownModelError, match="hf:bert-base-uncased"):
        analyze("hf:bert-base-uncasd")
    with pytest.raises(UnknownModelError):
        analyze("hf:someone/not-cached-anywhere")
    assert "HF_HUB_OFFLINE" not in os.environ  # put back after the build
    seen: list[str | None] = []
    monkeypatch.setattr(transformers.GPT2LMHeadModel, "__init__",
                        lambda self, config: seen.append(os.environ.get("HF_HUB_OFFLINE")) or
                        torch.nn.Module.__init__(self))
    hf_source.build("gpt2")
    assert seen == ["1"]
    assert {e.name for e in list_models(source="hf")} == {f"hf:{n}" for n in hf_source.DEFAULTS}


def test_cli_seq_len_and_bench(tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", f"hf:{tiny_bert}", "--seq-len", "32", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["inputs"] == "input_ids=1x32:int64" and data["input_size"] == [32]
    results = benchmark([f"hf:{tiny_bert}"], batch_sizes=(1, 2), time_budget_s=0.05, isolate=False, seq_len=16)
    assert [(r.status, r.batch_size, r.input_size) for r in results] == [("ok", 1, (16,)), ("ok", 2, (16,))]


def test_a_training_step_through_sdpa_counts_like_torch() -> None:
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)  # real weights
    a = analyze(model, inputs={"input_ids": TensorSpec((2, 16), torch.int64)}, mode="train")
    meta = copy.deepcopy(model).to("meta").train()
    with FlopCounterMode(display=False) as counter:
        logits = meta(input_ids=torch.zeros(2, 16, dtype=torch.int64, device="meta")).logits
        logits.backward(torch.empty_like(logits))
    assert a.complete and a.macs == counter.get_total_flops() // 2
    memory = analyze(model, inputs={"input_ids": TensorSpec((2, 16), torch.int64)}, mode="train",
                     optimizer="adamw").training_memory
    assert memory is not None and memory.optimizer_state_bytes == 2 * memory.weight_bytes
