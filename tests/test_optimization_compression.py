"""Quantization, pruning, distillation, compression reports and their validation, on tiny
seeded models and real promoter sequences (Genomic Benchmarks, human_nontata_promoters)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.utils.data import DataLoader

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import DNATokenizer, GenomicDataset, collate_batch
from hyena_glt.errors import OptimizationError
from hyena_glt.model import HyenaGLTForSequenceClassification
from hyena_glt.optimization import (
    CompressionReport,
    DeploymentConfig,
    DistillationConfig,
    KnowledgeDistiller,
    ModelPruner,
    ModelQuantizer,
    PruningConfig,
    QuantizationConfig,
    WeightOnlyInt8Embedding,
    WeightOnlyInt8Linear,
    distillation_kl,
    load_compressed,
    measure_model,
    measured_sparsity,
    save_compressed,
)
from hyena_glt.optimization.pruning import prunable_weights
from hyena_glt.optimization.weight_only import quantize_rows

LENGTH = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def promoter_loader(shared_data) -> DataLoader:
    """64 real promoter-task sequences (32 per class; the file is grouped by class)."""
    frame = pd.read_csv(shared_data / "genomic_benchmarks" / "human_nontata_promoters"
                        / "test.csv.gz")
    sample = frame.groupby("label").head(32)
    dataset = GenomicDataset(sample["sequence"].tolist(), sample["label"].tolist(),
                             DNATokenizer(), max_length=LENGTH)
    return DataLoader(dataset, batch_size=16, shuffle=False, collate_fn=collate_batch)


def tiny_config(d_model: int = 16) -> HyenaGLTConfig:
    return HyenaGLTConfig(vocab_size=64, d_model=d_model, n_layers=2, sequence_length=LENGTH,
                          num_heads=2, filter_order=16, dropout=0.0)


@pytest.fixture
def model() -> HyenaGLTForSequenceClassification:
    torch.manual_seed(0)
    return HyenaGLTForSequenceClassification(tiny_config()).eval()


def logits(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(b["input_ids"], b["attention_mask"]).logits for b in loader])


# --- quantization -------------------------------------------------------------------------
def test_dynamic_int8_quantizes_linears_keeps_filters_float_and_stays_close(
        model, promoter_loader):
    quantized = ModelQuantizer(QuantizationConfig(quantization_type="dynamic",
                                                  dtype=torch.qint8)).quantize(model)
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    mixer = quantized.backbone.local_encoder[0].mixer
    assert isinstance(mixer.in_proj, dynamic_linear)
    assert isinstance(quantized.head.out_proj, dynamic_linear)
    assert all(type(m) is nn.Linear for m in mixer.filter.mlp if isinstance(m, nn.Module)
               and "Linear" in type(m).__name__)
    assert type(model.backbone.local_encoder[0].mixer.in_proj) is nn.Linear  # input untouched
    difference = (logits(quantized, promoter_loader) - logits(model, promoter_loader)).abs()
    assert 0 < difference.max() < 0.05


def test_quantized_model_saves_int8_safetensors_and_reloads_bit_identical(
        model, promoter_loader, tmp_path):
    quantized = ModelQuantizer(QuantizationConfig("dynamic", torch.qint8)).quantize(model)
    save_compressed(quantized, tmp_path / "q")
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == [
        "config.json", "model.safetensors", "quantization.json"]
    assert json.loads((tmp_path / "q" / "quantization.json").read_text())[
        "quantization_type"] == "dynamic"
    with safe_open(tmp_path / "q" / "model.safetensors", "pt") as weights:
        key = "backbone.local_encoder.0.mixer.in_proj.weight_int8"
        assert weights.get_tensor(key).dtype == torch.int8
    reloaded = load_compressed(tmp_path / "q")
    assert torch.equal(logits(reloaded, promoter_loader), logits(quantized, promoter_loader))


@pytest.mark.parametrize("kind", ["float16", "bfloat16"])
def test_half_precision_casting_round_trips(model, promoter_loader, tmp_path, kind):
    half = ModelQuantizer(QuantizationConfig(quantization_type=kind)).quantize(model)
    assert half.backbone.final_norm.weight.dtype == getattr(torch, kind)
    out = logits(half, promoter_loader).float()
    assert (out - logits(model, promoter_loader)).abs().max() < 0.1
    save_compressed(half, tmp_path / kind)
    assert torch.equal(logits(load_compressed(tmp_path / kind), promoter_loader).float(), out)


def test_quantizing_twice_is_refused(model):
    quantized = ModelQuantizer().quantize(model)
    with pytest.raises(OptimizationError, match="already quantized"):
        ModelQuantizer().quantize(quantized)


def test_quantize_rows_is_symmetric_per_row_and_within_half_a_step():
    weight = torch.tensor([[0.4, -1.0, 0.25], [2.0, 0.0, -0.02], [0.0, 0.0, 0.0]])
    int8, scale = quantize_rows(weight)
    assert int8.dtype == torch.int8 and scale.shape == (3,)
    assert int8[0].tolist() == [51, -127, 32]  # 50.8 and 31.75 steps of 1/127
    assert int8[1].tolist() == [127, 0, -1]
    assert int8[2].tolist() == [0, 0, 0]  # an all-zero row stays zero (no 0/0)
    assert ((int8.float() * scale[:, None] - weight).abs() <= scale[:, None] / 2 + 1e-7).all()


def test_weight_only_int8_swaps_linears_and_embeddings_keeps_filters_float(
        model, promoter_loader, tmp_path):
    quantized = ModelQuantizer(QuantizationConfig("weight_only")).quantize(model)
    mixer = quantized.backbone.local_encoder[0].mixer
    assert isinstance(mixer.in_proj, WeightOnlyInt8Linear)
    assert isinstance(quantized.head.out_proj, WeightOnlyInt8Linear)
    assert isinstance(quantized.backbone.embeddings.ngram, WeightOnlyInt8Embedding)
    assert all(type(m) is nn.Linear for m in mixer.filter.mlp if "Linear" in type(m).__name__)
    assert not any(type(m) is nn.Linear for name, m in quantized.named_modules()
                   if ".filter." not in name)
    # the layer computes exactly F.linear with the dequantized weight
    x = torch.randn(3, 16)
    expected = x @ (mixer.in_proj.weight_int8.float() * mixer.in_proj.weight_scale[:, None]).T
    assert torch.allclose(mixer.in_proj(x), expected + mixer.in_proj.bias, atol=1e-6)
    out = logits(quantized, promoter_loader)
    assert 0 < (out - logits(model, promoter_loader)).abs().max() < 0.05
    save_compressed(quantized, tmp_path / "w")
    with safe_open(tmp_path / "w" / "model.safetensors", "pt") as weights:
        assert weights.get_tensor("backbone.local_encoder.0.mixer.in_proj.weight_int8"
                                  ).dtype == torch.int8
        assert weights.get_tensor("backbone.embeddings.ngram.weight_int8").dtype == torch.int8
    reloaded = load_compressed(tmp_path / "w")
    assert torch.equal(logits(reloaded, promoter_loader), out)
    int8_weights = sum(m.weight_int8.numel() for m in quantized.modules()
                       if isinstance(m, (WeightOnlyInt8Linear, WeightOnlyInt8Embedding)))
    saved = measure_model(model).size_bytes - measure_model(quantized).size_bytes
    assert saved > 2.5 * int8_weights  # 4 -> 1 byte per weight, less one scale per row


def test_dynamic_int8_stores_embedding_tables_int8_unless_asked_not_to(model):
    quantized = ModelQuantizer(QuantizationConfig("dynamic")).quantize(model)
    assert isinstance(quantized.backbone.embeddings.token, WeightOnlyInt8Embedding)
    kept = ModelQuantizer(QuantizationConfig("dynamic", quantize_embeddings=False)
                          ).quantize(model)
    assert type(kept.backbone.embeddings.ngram) is nn.Embedding
    # recipes written before the option existed kept the tables float
    assert not QuantizationConfig.from_recipe({"quantization_type": "dynamic",
                                               "dtype": "torch.qint8"}).quantize_embeddings


# --- pruning ------------------------------------------------------------------------------
def test_global_magnitude_pruning_reaches_sparsity_permanently(model, tmp_path):
    pruner = ModelPruner(PruningConfig(pruning_type="magnitude", sparsity=0.5))
    pruned = pruner.prune(model)
    total = sum(m.weight.numel() for m, _ in prunable_weights(pruned))
    assert abs(pruner.achieved_sparsity - 0.5) <= 1 / total
    assert measured_sparsity(model) < 0.01  # the input model is left dense
    assert not any("weight_orig" in key or "weight_mask" in key for key in pruned.state_dict())
    pruned.save_pretrained(tmp_path / "p")
    reloaded = HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "p")
    assert measured_sparsity(reloaded) == pytest.approx(pruner.achieved_sparsity)


def test_per_layer_magnitude_pruning_prunes_every_layer_to_sparsity(model):
    pruned = ModelPruner(PruningConfig("magnitude", sparsity=0.25, scope="layer")).prune(model)
    for module, _ in prunable_weights(pruned):
        zeros = int((module.weight == 0).sum())
        assert zeros == round(0.25 * module.weight.numel())


def test_structured_pruning_zeroes_whole_output_channels(model):
    pruned = ModelPruner(PruningConfig("structured", sparsity=0.5)).prune(model)
    for module, _ in prunable_weights(pruned):
        rows_zero = int((module.weight.abs().sum(1) == 0).sum())
        assert rows_zero == round(0.5 * module.weight.shape[0])


def test_iterative_prune_and_fine_tune_keeps_pruned_weights_at_zero(model, promoter_loader):
    config = PruningConfig("magnitude", sparsity=0.4, iterations=2, fine_tune_steps=2,
                           learning_rate=1e-2)
    pruner = ModelPruner(config)
    tuned = pruner.prune(model, promoter_loader)
    one_shot = ModelPruner(PruningConfig("magnitude", sparsity=0.4)).prune(model)
    assert abs(pruner.achieved_sparsity - 0.4) < 1e-3
    # fine-tuning moved the surviving weights (the head is outside the pruned set's zeros)
    assert not torch.equal(tuned.head.dense.weight, one_shot.head.dense.weight)
    with pytest.raises(OptimizationError, match="needs a train_dataloader"):
        ModelPruner(config).prune(model)


def test_prune_and_distil_fine_tunes_toward_the_unpruned_model(model, promoter_loader):
    torch.manual_seed(0)
    config = dict(pruning_type="magnitude", sparsity=0.5, fine_tune_steps=3,
                  learning_rate=1e-2)
    distilled = ModelPruner(PruningConfig(**config, distillation_alpha=1.0)).prune(
        model, promoter_loader)
    torch.manual_seed(0)
    labels_only = ModelPruner(PruningConfig(**config)).prune(model, promoter_loader)
    assert measured_sparsity(distilled) == pytest.approx(0.5, abs=1e-3)
    assert not torch.equal(distilled.head.dense.weight, labels_only.head.dense.weight)
    # alpha = 1 trains on the KL to the original alone, so the KL falls below one-shot pruning
    one_shot = ModelPruner(PruningConfig("magnitude", 0.5)).prune(model)
    assert (distillation_kl(model, distilled, promoter_loader)
            < distillation_kl(model, one_shot, promoter_loader))


# --- distillation -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["response", "feature"])
def test_distillation_reduces_kl_to_teacher(model, promoter_loader, kind):
    torch.manual_seed(1)
    student = HyenaGLTForSequenceClassification(tiny_config(d_model=8))
    before = distillation_kl(model, student, promoter_loader)
    teacher_state = {k: v.clone() for k, v in model.state_dict().items()}
    distiller = KnowledgeDistiller(DistillationConfig(temperature=4.0, alpha=0.7,
                                                      distillation_type=kind, steps=12,
                                                      learning_rate=3e-3))
    trained = distiller.distill(model, student, promoter_loader)
    assert trained is student
    assert distillation_kl(model, student, promoter_loader) < 0.7 * before
    assert all(torch.equal(v, teacher_state[k]) for k, v in model.state_dict().items())
    if kind == "feature":  # widths 8 -> 16 need a projection
        assert isinstance(distiller.projection, nn.Linear)
        assert distiller.projection.weight.shape == (16, 8)


# --- report -------------------------------------------------------------------------------
def test_compression_report_has_every_field(model, promoter_loader, tmp_path):
    pruner = ModelPruner(PruningConfig("magnitude", sparsity=0.5))
    pruner.prune(model, validation_dataloader=promoter_loader)
    report = pruner.report
    assert isinstance(report, CompressionReport)
    data = json.loads(report.save(tmp_path / "report.json").read_text())
    for side in ("before", "after"):
        assert set(data[side]) == {"parameters", "nonzero_parameters", "size_bytes",
                                   "latency_ms", "throughput_seqs_per_s", "metric_name",
                                   "metric"}
        assert data[side]["latency_ms"] > 0 and data[side]["throughput_seqs_per_s"] > 0
        assert 0.0 <= data[side]["metric"] <= 1.0
    assert data["before"]["parameters"] == data["after"]["parameters"] == sum(
        p.numel() for p in model.parameters())
    assert data["after"]["nonzero_parameters"] < 0.75 * data["before"]["nonzero_parameters"]
    assert data["extra"]["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert {"size_ratio", "speedup", "metric_change"} <= set(data)


def test_quantized_model_is_smaller_on_disk(model):
    quantized = ModelQuantizer().quantize(model)
    int8_weights = sum(m.weight().numel() for m in quantized.modules()
                       if isinstance(m, torch.ao.nn.quantized.dynamic.Linear))
    saved = measure_model(model).size_bytes - measure_model(quantized).size_bytes
    # 4 -> 1 byte per weight, less the scale, zero point and header entries of each layer
    assert saved > 2 * int8_weights


# --- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, field, value", [
    (lambda: PruningConfig(sparsity=1.0), "sparsity", "1.0"),
    (lambda: PruningConfig(sparsity=-0.1), "sparsity", "-0.1"),
    (lambda: PruningConfig(pruning_type="random"), "pruning_type", "'random'"),
    (lambda: PruningConfig(scope="model"), "scope", "'model'"),
    (lambda: PruningConfig(iterations=0), "iterations", "0"),
    (lambda: PruningConfig(distillation_alpha=1.5), "distillation_alpha", "1.5"),
    (lambda: PruningConfig(distillation_temperature=0), "distillation_temperature", "0"),
    (lambda: QuantizationConfig(quantization_type="static"), "quantization_type", "'static'"),
    (lambda: QuantizationConfig(dtype=torch.quint8), "dtype", "torch.quint8"),
    (lambda: DistillationConfig(temperature=0), "temperature", "0"),
    (lambda: DistillationConfig(alpha=1.5), "alpha", "1.5"),
    (lambda: DistillationConfig(distillation_type="attention"), "distillation_type",
     "'attention'"),
    (lambda: DeploymentConfig(export_format="tflite"), "export_format", "'tflite'"),
    (lambda: DeploymentConfig(export_format="torchscript"), "export_format", "'torchscript'"),
    (lambda: DeploymentConfig(optimization_level="max"), "optimization_level", "'max'"),
])
def test_invalid_settings_raise_optimization_error_naming_field_and_value(build, field, value):
    with pytest.raises(OptimizationError) as error:
        build()
    assert f"{field}={value}" in str(error.value)
    assert isinstance(error.value, ValueError)
