"""HyenaGLTTrainer on real SARS-CoV-2 windows: curriculum pretraining, exact resume, NaN, metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.datasets import GenomicDataset, ShardDataset
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError, TrainingError
from hyena_glt.ingest import ingest_fasta
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.training import (
    CurriculumLearner,
    HyenaGLTTrainer,
    TrainingPreempted,
    seed_everything,
)
from hyena_glt.training.checkpoint import load_training_checkpoint

GENOME = Path("genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**changes) -> HyenaGLTConfig:
    base = dict(vocab_size=64, d_model=16, n_layers=2, sequence_length=256, num_heads=2,
                alphabet_size=22, batch_size=4, num_epochs=1, warmup_steps=2,
                learning_rate=3e-3, dropout=0.1, seed=0)
    return HyenaGLTConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def genome_windows(shared_data, tmp_path_factory) -> Path:
    """SARS-CoV-2 cut into 128-nt windows (233 windows): a real 'windows' shard directory."""
    out = tmp_path_factory.mktemp("shards") / "sars_windows"
    ingest_fasta([shared_data / GENOME], out, window=128)
    return out


@pytest.fixture(scope="module")
def window_dataset(genome_windows) -> GenomicDataset:
    """The first 16 windows, map-style, unpadded."""
    full = GenomicDataset(data_path=genome_windows, max_length=None, padding=None)
    return torch.utils.data.Subset(full, range(16))


def make_trainer(dataset, out: Path, config: HyenaGLTConfig | None = None, **kwargs
                 ) -> HyenaGLTTrainer:
    config = config or tiny_config(gradient_accumulation_steps=2, batch_size=2)
    seed_everything(123)
    model = HyenaGLTForCausalLM(config)
    curriculum = CurriculumLearner([{"max_length": 32, "epochs": 1},
                                    {"max_length": 64, "epochs": 1}])
    return HyenaGLTTrainer(model, config, dataset, None, DNATokenizer(vocab_size=64), out,
                           curriculum=curriculum, log_steps=1, show_progress=False, **kwargs)


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "model.safetensors"))


def test_curriculum_pretraining_on_genome_shards_lowers_the_loss(genome_windows, tmp_path):
    config = tiny_config(batch_size=8, learning_rate=5e-3)
    seed_everything(0)
    model = HyenaGLTForCausalLM(config)
    stream = ShardDataset(genome_windows, shuffle_buffer=64, seed=0)
    curriculum = CurriculumLearner([{"max_length": 64, "steps": 10},
                                    {"max_length": 128, "steps": 10}])
    val = ShardDataset(genome_windows)
    trainer = HyenaGLTTrainer(model, config, stream, val, None, tmp_path, curriculum=curriculum,
                              log_steps=5, show_progress=False)
    assert trainer.objective == "causal_lm"
    # Stage 2 doubles the length, so it halves the micro-batch: 8 x 64 = 4 x 128 tokens.
    assert [(s.max_length, s.micro_batch_size) for s in trainer.stages] == [(64, 8), (128, 4)]
    result = trainer.train()
    train = [r for r in result["history"] if "loss" in r]
    assert [(r["step"], r["max_length"]) for r in train] == [(5, 64), (10, 64), (15, 128),
                                                             (20, 128)]
    assert train[-1]["loss"] < train[0]["loss"] - 0.3  # from ~log(22) towards the ~1.9 of DNA
    assert all(r["tokens_per_s"] > 0 for r in train)
    assert train[-1]["tokens_seen"] == 20 * 512
    assert result["global_step"] == trainer.total_steps == 20
    evals = [r for r in result["history"] if "eval_loss" in r]
    assert [r["step"] for r in evals] == [10, 20]  # each step-limited stage ends with an eval
    assert evals[1]["eval_loss"] < evals[0]["eval_loss"]
    assert evals[1]["eval_perplexity"] == pytest.approx(math.exp(evals[1]["eval_loss"]))
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == result["history"]
    saved = HyenaGLTForCausalLM.from_pretrained(tmp_path / "model")
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(),
                                                 model.state_dict().values(), strict=True))
    assert (tmp_path / "model" / "training_config.json").is_file()


@pytest.fixture(scope="module")
def straight_run(window_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    make_trainer(window_dataset, out).train()
    return out


@pytest.mark.parametrize("stop_at", [3, 7])  # inside stage 0; inside stage 1 (after a switch)
def test_resume_is_bit_identical_to_an_uninterrupted_run(window_dataset, straight_run, tmp_path,
                                                         stop_at):

    def stop(trainer, event):
        if event == "step_end" and trainer.state.global_step == stop_at:
            trainer.request_stop()

    first = make_trainer(window_dataset, tmp_path / "resumed", callbacks=[stop])
    with pytest.raises(TrainingPreempted) as stopped:
        first.train()
    assert stopped.value.step == stop_at
    assert stopped.value.exit_code == 75
    state = json.loads((tmp_path / "resumed/checkpoints/last/state.json").read_text())
    assert state["trainer"]["state"]["global_step"] == stop_at
    # A fresh process would build a new model with other random weights: resume overwrites them.
    second = make_trainer(window_dataset, tmp_path / "resumed")
    second.train()
    assert second.state.global_step == first.total_steps == 4 + 8
    straight, resumed = final_weights(straight_run), final_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # metrics.jsonl holds each step once, as the uninterrupted run's does (tokens/s aside).
    def steps(out):
        return [(r["step"], r["loss"]) for r in map(json.loads,
                (out / "metrics.jsonl").read_text().splitlines())]
    assert steps(tmp_path / "resumed") == steps(straight_run)


def test_finished_run_is_not_repeated(window_dataset, tmp_path):
    trainer = make_trainer(window_dataset, tmp_path, max_steps=4)
    trainer.train()
    again = make_trainer(window_dataset, tmp_path, max_steps=4)
    again.train()
    assert again.state.global_step == 4
    assert len(again.get_metrics()["history"]) == 4


def test_nan_loss_raises_naming_the_step_and_keeps_the_last_good_checkpoint(window_dataset,
                                                                            tmp_path):
    trainer = make_trainer(window_dataset, tmp_path, save_steps=2)
    calls = {"n": 0}

    def poison(module, inputs, output):  # forward hook: NaN from the 11th forward on
        calls["n"] += 1
        return output * float("nan") if calls["n"] > 10 else output

    trainer.model.head.register_forward_hook(poison)
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\).* at step 6 ") as error:
        trainer.train()
    assert "checkpoints/last" in str(error.value)
    probe = HyenaGLTForCausalLM(trainer.config)
    state = load_training_checkpoint(tmp_path / "checkpoints" / "last", probe)
    assert state["state"]["global_step"] == 4
    assert all(torch.isfinite(p).all() for p in probe.parameters())


def test_checkpoint_is_pickle_free_and_rejects_other_settings(window_dataset, tmp_path):
    trainer = make_trainer(window_dataset, tmp_path, max_steps=2)
    trainer.train()
    last = tmp_path / "checkpoints" / "last"
    assert sorted(p.name for p in last.iterdir()) == [
        "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]
    other = make_trainer(window_dataset, tmp_path, max_steps=3)
    with pytest.raises(TrainingError, match="total_steps=2, this run has 3"):
        other.load_checkpoint(last)


def test_masked_lm_objective_trains_a_bidirectional_model(window_dataset, tmp_path):
    config = tiny_config(bidirectional=True, batch_size=8)
    seed_everything(0)
    model = HyenaGLTForCausalLM(config)
    trainer = HyenaGLTTrainer(model, config, window_dataset, window_dataset, None, tmp_path,
                              log_steps=1, show_progress=False)
    assert trainer.objective == "masked_lm"
    metrics = trainer.train()
    assert 0 < metrics["eval_accuracy"] <= 1 and metrics["eval_loss"] > 0
    with pytest.raises(ConfigurationError, match="bidirectional"):
        HyenaGLTTrainer(HyenaGLTForCausalLM(tiny_config()), tiny_config(), window_dataset,
                        objective="masked_lm", output_dir=tmp_path / "x")
