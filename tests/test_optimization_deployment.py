"""ONNX and ``torch.export`` export of a tiny Hyena-GLT classifier (FFT long convolutions,
attention and dynamic merging), verified in ONNX Runtime / a reloaded ``.pt2`` on real promoter
sequences."""

from __future__ import annotations

import onnx
import pandas as pd
import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import DNATokenizer, GenomicDataset, collate_batch
from hyena_glt.errors import OptimizationError
from hyena_glt.model import HyenaGLTForSequenceClassification
from hyena_glt.optimization import (
    DeploymentConfig,
    ExportedProgramModel,
    ModelOptimizer,
    ModelQuantizer,
    OnnxModel,
)
from hyena_glt.optimization.deployment import prefix_cummax

LENGTH = 64
ATOL = 1e-4


@pytest.fixture(scope="module")
def batch(shared_data) -> dict[str, torch.Tensor]:
    """Six real sequences of 64 nt (three per class), two of them cut shorter (padding)."""
    frame = pd.read_csv(shared_data / "genomic_benchmarks" / "human_nontata_promoters"
                        / "test.csv.gz")
    sample = frame.groupby("label").head(3)
    sequences = [s[:LENGTH] for s in sample["sequence"].tolist()]
    sequences[1], sequences[4] = sequences[1][:40], sequences[4][:57]
    dataset = GenomicDataset(sequences, sample["label"].tolist(), DNATokenizer(),
                             max_length=LENGTH, padding=None)
    return collate_batch([dataset[i] for i in range(len(dataset))])


@pytest.fixture(scope="module")
def model(batch) -> HyenaGLTForSequenceClassification:
    torch.manual_seed(0)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=LENGTH,
                            num_heads=2, filter_order=16, dropout=0.0, merge_ratio=0.5,
                            local_decoder_layers=0, pooling="attention")  # the workflow's
    model = HyenaGLTForSequenceClassification(config).eval()
    # An untrained threshold merges nothing or everything: set it to the median entropy of
    # the batch, so that patches of several positions really occur.
    merging = model.backbone.merging
    inputs = {}
    handle = merging.register_forward_pre_hook(lambda module, args: inputs.update(args=args))
    with torch.no_grad():
        model(batch["input_ids"], batch["attention_mask"])
        hidden, mask, ids = inputs["args"]
        scores, _ = merging.boundary_scores(hidden, ids, mask)
    handle.remove()
    merging.threshold.fill_(scores[batch["attention_mask"].bool()].median())
    return model


@pytest.fixture(scope="module")
def exported(model, batch, tmp_path_factory) -> OnnxModel:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graph on a shared machine (see test_optimization_compression)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    try:
        yield ModelOptimizer(DeploymentConfig(export_format="onnx", optimization_level="all",
                                              output_path=str(path), atol=ATOL)).optimize(
            model, (batch["input_ids"], batch["attention_mask"]))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported_program(model, batch, tmp_path_factory) -> ExportedProgramModel:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pt2") / "model.pt2"
    try:
        yield ModelOptimizer(DeploymentConfig(export_format="torch_export", output_path=str(path),
                                              atol=ATOL)).optimize(
            model, (batch["input_ids"], batch["attention_mask"]))
    finally:
        torch.set_num_threads(threads)


def test_onnx_runtime_matches_pytorch_on_real_sequences(exported, model, batch):
    with torch.no_grad():
        expected = model(batch["input_ids"], batch["attention_mask"]).logits
        merged = model.backbone(batch["input_ids"], batch["attention_mask"]).num_patches
    assert (merged < batch["attention_mask"].sum(1)).all()  # merging really happened
    assert exported.max_abs_diff is not None and exported.max_abs_diff < ATOL
    got = exported(batch["input_ids"], batch["attention_mask"])
    assert (got - expected).abs().max() < ATOL


def test_export_has_dynamic_batch_and_pads_shorter_inputs(exported, model, batch):
    ids, mask = batch["input_ids"][:3, :50], batch["attention_mask"][:3, :50]
    with torch.no_grad():
        expected = model(ids, mask).logits
    assert (exported(ids, mask) - expected).abs().max() < ATOL
    single = exported(batch["input_ids"][:1], batch["attention_mask"][:1])
    assert single.shape == (1, 2)


def test_export_records_its_length_and_refuses_longer_inputs(exported):
    metadata = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert metadata["hyena_glt.sequence_length"] == str(LENGTH)
    assert exported.sequence_length == LENGTH
    with pytest.raises(OptimizationError, match="exceeds the exported length 64"):
        exported(torch.full((1, LENGTH + 1), 7))
    with pytest.raises(OptimizationError, match="token ids must lie in"):
        exported(torch.full((1, 8), 99))


def test_quantized_models_are_not_exported(model):
    with pytest.raises(OptimizationError, match="export the float model"):
        ModelOptimizer(DeploymentConfig()).optimize(ModelQuantizer().quantize(model))


def test_prefix_cummax_equals_torch_cummax_including_ties():
    x = torch.randint(0, 5, (3, 37, 4))  # many ties
    for dim in (1, 2):
        values, indices = prefix_cummax(x, dim)
        reference = torch.cummax(x, dim)
        assert torch.equal(values, reference.values)
        assert torch.equal(indices, reference.indices)


def test_onnx_file_holds_the_weights_once_without_debug_metadata(exported, model):
    proto = onnx.load(str(exported.path))
    assert not any(node.metadata_props for node in proto.graph.node)
    # the implicit filters are generated in the graph (Sin nodes), not stored tap by tap
    assert any(node.op_type == "Sin" for node in proto.graph.node)
    weight_bytes = 4 * sum(p.numel() for p in model.parameters())
    stored = sum(tensor.ByteSize() for tensor in proto.graph.initializer)
    assert weight_bytes <= stored < 1.1 * weight_bytes  # each weight once, plus small buffers


def test_torch_export_fallback_reloads_and_matches_pytorch(exported_program, model, batch):
    assert exported_program.path.suffix == ".pt2"
    assert exported_program.max_abs_diff is not None and exported_program.max_abs_diff < ATOL
    reloaded = ExportedProgramModel(exported_program.path)  # a fresh load from the file
    assert reloaded.sequence_length == LENGTH and reloaded.alphabet_size == 33
    ids, mask = batch["input_ids"][:5, :50], batch["attention_mask"][:5, :50]  # other batch
    with torch.no_grad():
        expected = model(ids, mask).logits
    assert (reloaded(ids, mask) - expected).abs().max() < ATOL
    with pytest.raises(OptimizationError, match="exceeds the exported length 64"):
        reloaded(torch.full((1, LENGTH + 1), 7))
