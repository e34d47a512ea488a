"""ONNX and ``torch.export`` export of a tiny Hyena-GLT classifier (FFT long convolutions,
attention and dynamic merging), verified in ONNX Runtime / a reloaded ``.pt2`` on real promoter
sequences, within the float32 rounding bound of :mod:`hyena_glt.optimization.parity` (the same
on every CPU: see that module for why a fixed 1e-4 failed on AMD EPYC machines)."""

from __future__ import annotations

import copy
import gzip
import shutil
import subprocess
import sys

import numpy as np
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
from hyena_glt.optimization.parity import SAFETY, boundary_ambiguous, parity_tolerance

LENGTH = 64

#: ONNX Runtime on an emulated AMD CPU (qemu-user, EPYC-Milan's CPUID: AMD vendor, AVX2 but no
#: AVX-512), so that MLAS and glibc pick the kernels they pick on such machines. The
#: 5.3e-4 failure of issue 16 was on an AMD EPYC; .ci/run installs qemu-user.
QEMU = shutil.which("qemu-x86_64")
EMULATED_CPU = "EPYC-Milan"
_RUN_ONNX = """
import sys, numpy as np, onnxruntime as ort
data = np.load(sys.argv[2])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
length = session.get_inputs()[0].shape[1]
pad = length - data["ids"].shape[1]
ids = np.pad(data["ids"], ((0, 0), (0, pad)), constant_values=int(data["pad"]))
mask = np.pad(data["mask"], ((0, 0), (0, pad)))
(logits,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
np.save(sys.argv[3], logits)
"""


def run_on_emulated_amd(runner: OnnxModel, ids: torch.Tensor, mask: torch.Tensor,
                        folder) -> torch.Tensor:
    """The exported file run by ONNX Runtime under ``qemu-x86_64 -cpu EPYC-Milan``."""
    inputs, output = folder / "inputs.npz", folder / "logits.npy"
    np.savez(inputs, ids=ids.numpy(), mask=mask.numpy(), pad=runner.pad_token_id)
    subprocess.run([QEMU, "-cpu", EMULATED_CPU, sys.executable, "-c", _RUN_ONNX,
                    str(runner.path), str(inputs), str(output)], check=True, timeout=600,
                   capture_output=True)
    return torch.from_numpy(np.load(output))


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


def merging_scores(model, batch) -> torch.Tensor:
    """The boundary scores of the batch's real positions, sorted."""
    merging = model.backbone.merging
    inputs = {}
    handle = merging.register_forward_pre_hook(lambda module, args: inputs.update(args=args))
    with torch.no_grad():
        model(batch["input_ids"], batch["attention_mask"])
        hidden, mask, ids = inputs["args"]
        scores, _ = merging.boundary_scores(hidden, ids, mask)
    handle.remove()
    return scores[batch["attention_mask"].bool()].sort().values


def set_threshold(model, value) -> None:
    """Fix the merging threshold at ``value``, as training leaves a calibrated one."""
    merging = model.backbone.merging
    merging.threshold.fill_(value)
    merging.calibration_steps.fill_(1)


def tiny_classifier(length: int = LENGTH, **overrides) -> HyenaGLTForSequenceClassification:
    torch.manual_seed(0)
    settings = dict(vocab_size=64, d_model=16, n_layers=2, sequence_length=length, num_heads=2,
                    filter_order=16, dropout=0.0, merge_ratio=0.5, local_decoder_layers=0,
                    pooling="attention")  # the workflow's pooling
    return HyenaGLTForSequenceClassification(HyenaGLTConfig(**{**settings, **overrides})).eval()


@pytest.fixture(scope="module")
def model(batch) -> HyenaGLTForSequenceClassification:
    model = tiny_classifier()
    # A fresh layer patches evenly; a trained one compares scores with its threshold. Put the
    # threshold in the widest gap between neighbouring scores of the middle half, so that
    # score-driven patches of several positions occur and no score is within rounding of it. (The median itself, used here
    # before, is one of the scores: on an AMD EPYC, ONNX Runtime's score there differed by one
    # ulp, the boundary flipped and the logits moved by 5.3e-4.)
    scores = merging_scores(model, batch)
    middle = scores[len(scores) // 4: 3 * len(scores) // 4]
    widest = int((middle[1:] - middle[:-1]).argmax())
    set_threshold(model, float(middle[widest] + middle[widest + 1]) / 2)
    model.config.extra["decision_threshold"] = 0.42  # as fine-tuning stores it
    return model


@pytest.fixture(scope="module")
def exported(model, batch, tmp_path_factory) -> OnnxModel:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graph on a shared machine (see test_optimization_compression)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    try:
        yield ModelOptimizer(DeploymentConfig(export_format="onnx", optimization_level="all",
                                              output_path=str(path))).optimize(
            model, (batch["input_ids"], batch["attention_mask"]))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported_program(model, batch, tmp_path_factory) -> ExportedProgramModel:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pt2") / "model.pt2"
    try:
        yield ModelOptimizer(DeploymentConfig(export_format="torch_export",
                                              output_path=str(path))).optimize(
            model, (batch["input_ids"], batch["attention_mask"]))
    finally:
        torch.set_num_threads(threads)


def test_onnx_runtime_matches_pytorch_on_real_sequences(exported, model, batch):
    with torch.no_grad():
        expected = model(batch["input_ids"], batch["attention_mask"]).logits
        merged = model.backbone(batch["input_ids"], batch["attention_mask"]).num_patches
    assert (merged < batch["attention_mask"].sum(1)).all()  # merging really happened
    assert exported.ambiguous_sequences == 0  # every sequence was compared
    assert exported.max_abs_diff is not None and exported.max_abs_diff <= exported.tolerance
    got = exported(batch["input_ids"], batch["attention_mask"])
    assert (got - expected).abs().max() <= exported.tolerance


def test_export_has_dynamic_batch_and_pads_shorter_inputs(exported, model, batch):
    ids, mask = batch["input_ids"][:3, :50], batch["attention_mask"][:3, :50]
    with torch.no_grad():
        expected = model(ids, mask).logits
    assert (exported(ids, mask) - expected).abs().max() <= exported.tolerance
    single = exported(batch["input_ids"][:1], batch["attention_mask"][:1])
    assert single.shape == (1, 2)


def test_export_records_its_length_and_refuses_longer_inputs(exported):
    metadata = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert metadata["hyena_glt.sequence_length"] == str(LENGTH)
    assert exported.sequence_length == LENGTH
    assert exported.decision_threshold == pytest.approx(0.42)  # predict calls outputs at it
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
    assert exported_program.max_abs_diff is not None
    assert exported_program.max_abs_diff <= exported_program.tolerance
    reloaded = ExportedProgramModel(exported_program.path)  # a fresh load from the file
    assert reloaded.sequence_length == LENGTH and reloaded.alphabet_size == 33
    ids, mask = batch["input_ids"][:5, :50], batch["attention_mask"][:5, :50]  # other batch
    with torch.no_grad():
        expected = model(ids, mask).logits
    assert (reloaded(ids, mask) - expected).abs().max() <= exported_program.tolerance
    with pytest.raises(OptimizationError, match="exceeds the exported length 64"):
        reloaded(torch.full((1, LENGTH + 1), 7))


def test_tolerance_is_float32_rounding_of_the_fft_the_depth_and_the_logits_scale(model):
    eps = torch.finfo(torch.float32).eps
    small, large = torch.tensor([[0.3, -0.2]]), torch.tensor([[8.0, -2.0]])
    assert parity_tolerance(model, small, 128) == pytest.approx(SAFETY * eps * 7 * 2)
    assert parity_tolerance(model, large, 128) == pytest.approx(SAFETY * eps * 7 * 2 * 8)
    assert parity_tolerance(model, small, 4096) == pytest.approx(SAFETY * eps * 12 * 2)


def test_sequences_with_a_boundary_at_the_threshold_are_left_out_of_the_check(batch):
    """A score exactly at the threshold: one ulp decides the patching, on any CPU."""
    model = tiny_classifier()
    scores = merging_scores(model, batch)
    at = scores[len(scores) // 2]
    set_threshold(model, at)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    ambiguous = boundary_ambiguous(model, ids, mask)
    assert 0 < int(ambiguous.sum()) < len(ambiguous)
    with torch.no_grad():
        before = model(ids, mask).logits
        moved = torch.zeros(len(ids))
        for direction in (-1e9, 1e9):  # one ulp below and above
            set_threshold(model, torch.nextafter(at, torch.tensor(direction)))
            after = model(ids, mask).logits
            moved = torch.maximum(moved, (after - before).abs().max(dim=1).values)
    tolerance = parity_tolerance(model, before, 128)
    assert moved[ambiguous].max() > tolerance  # one ulp flips a boundary: far beyond rounding
    assert moved[~ambiguous].max() == 0  # the others do not notice


@pytest.mark.parametrize("length", [593, 2048])
def test_long_exports_are_as_accurate_as_pytorch_float32(length, shared_data, tmp_path):
    """Against a float64 reference: ONNX Runtime's error stays at PyTorch's own float32 level.

    593 nt needs an FFT of >= 1186 points; a 5-smooth size (1200) sent ONNX Runtime to its naive
    DFT, 100x less accurate (and CPU-dependent); exports use a power of two (2048).
    """
    genome = shared_data / "genome_annotation" / "sars_cov_2_NC_045512.2" / "NC_045512.2.fa.gz"
    sequence = "".join(gzip.open(genome, "rt").read().splitlines()[1:])
    tokenizer = DNATokenizer()
    ids = torch.tensor([tokenizer.encode(sequence[i * length:(i + 1) * length],
                                         add_special_tokens=False) for i in range(2)])
    mask = torch.ones_like(ids)
    model = tiny_classifier(length, use_dynamic_merging=False)
    runner = ModelOptimizer(DeploymentConfig(output_path=str(tmp_path / "m.onnx"))).optimize(
        model, (ids, mask))
    reference = copy.deepcopy(model).double()
    with torch.no_grad():
        truth = reference(ids, mask).logits
        float32_error = (model(ids, mask).logits.double() - truth).abs().max()
    eps = torch.finfo(torch.float32).eps
    bound = 8 * max(float32_error, eps * truth.abs().max())
    assert (runner(ids, mask).double() - truth).abs().max() <= bound
    assert runner.max_abs_diff <= runner.tolerance
    if QEMU is not None and length < 1024:  # and on an (emulated) AMD CPU
        on_amd = run_on_emulated_amd(runner, ids, mask, tmp_path).double()
        assert (on_amd - truth).abs().max() <= bound


@pytest.mark.skipif(QEMU is None, reason="qemu-user (qemu-x86_64) is not installed")
def test_the_export_agrees_on_an_emulated_amd_cpu(exported, model, batch, tmp_path):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        expected = model(ids, mask).logits
    on_amd = run_on_emulated_amd(exported, ids, mask, tmp_path)
    assert (on_amd - expected).abs().max() <= exported.tolerance
