"""The k-mer path (``config.kmer_path``) and strand-state fusion (``config.rc_fusion``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from hyena_glt import HyenaGLTConfig
from hyena_glt.errors import ConfigurationError, HyenaGLTWarning
from hyena_glt.model import (
    HyenaGLTForCausalLM,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
)
from hyena_glt.model.kmer_path import (
    FrameKmerPath,
    SequenceKmerPath,
    kmer_counts,
    kmer_index,
    phase_window_means,
)
from hyena_glt.optimization.parity import parity_tolerance

SMALL = dict(d_model=16, n_layers=2, num_heads=2, sequence_length=128, vocab_size=64,
             filter_order=8, dropout=0.0)


def _brute_force(embeddings, mask, half):
    batch, length, width = embeddings.shape
    out = torch.zeros(batch, length, 3, width)
    for b in range(batch):
        for t in range(length):
            for phase in range(3):
                picked = [s for s in range(max(0, t - half), min(length, t + half + 1))
                          if (s - t) % 3 == phase and mask[b, s]]
                if picked:
                    out[b, t, phase] = embeddings[b, picked].mean(0)
    return out


def test_phase_window_means_match_a_loop_over_positions_and_skip_padding():
    torch.manual_seed(0)
    embeddings = torch.randn(2, 19, 3)
    mask = torch.ones(2, 19)
    mask[1, 13:] = 0
    got = phase_window_means(embeddings, mask, 5)
    assert torch.allclose(got, _brute_force(embeddings, mask, 5), atol=1e-5)


def test_kmer_index_and_counts_match_python():
    sequence = "ACGTNACGGT"
    ids = torch.tensor([[7 + "ACGT".index(c) if c in "ACGT" else 11 for c in sequence]])
    mask = torch.ones_like(ids)
    mask[0, -2:] = 0  # "GT" is padding
    index = kmer_index(ids, 3, 4, mask)[0].tolist()
    for end, value in enumerate(index):
        kmer = sequence[max(0, end - 2):end + 1]
        whole = end >= 2 and "N" not in kmer and end < len(sequence) - 2
        expected = (int("".join(str("ACGT".index(c)) for c in kmer), 4) if whole else 64)
        assert value == expected, (end, kmer)
    counts = kmer_counts(ids, mask, (1, 2), 4)[0]
    assert counts[:4].tolist() == [2, 2, 2, 1]  # A C G T in ACGTNACG
    assert counts[4 + 0 * 4 + 1] == 2  # AC twice; no dinucleotide spans the N
    assert counts[4:].sum() == 5


def test_frame_path_scores_a_base_the_same_whatever_its_codon_position():
    """Max over frames: in a period-3 sequence the three codon positions see the same three
    reading frames (permuted), so their scores agree; without the max they would not."""
    torch.manual_seed(0)
    path = FrameKmerPath(2, halves=(9, 30)).eval()
    periodic = torch.tensor([[7, 9, 10] * 40])  # AGT repeated
    with torch.no_grad():
        logits = path(periodic)[0]
        frames = path.frame(path.norm(path.codon_frames(periodic, None)))[0, 57:60]
    middle = logits[57:60]
    assert torch.allclose(middle[0], middle[1], atol=1e-5)
    assert torch.allclose(middle[0], middle[2], atol=1e-5)
    assert not torch.allclose(frames[0, 0], frames[1, 0], atol=1e-3)  # the frames differ


@pytest.mark.parametrize("model_class, task_type", [
    (HyenaGLTForSequenceClassification, "sequence_classification"),
    (HyenaGLTForTokenClassification, "token_classification"),
])
def test_kmer_path_logits_do_not_depend_on_padding(model_class, task_type):
    torch.manual_seed(0)
    model = model_class(HyenaGLTConfig(task_type=task_type, kmer_path=True,
                                       use_dynamic_merging=False, **SMALL)).eval()
    ids = torch.randint(7, 11, (1, 40))
    padded = torch.cat([ids, torch.zeros(1, 24, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 40), torch.zeros(1, 24)], 1).long()
    with torch.no_grad():
        alone = model(ids).logits
        inside = model(padded, mask).logits
    assert torch.allclose(alone, inside[:, :40] if inside.dim() == 3 else inside, atol=1e-5)


def test_sequence_kmer_path_reads_the_length():
    """The CNN sees a sequence's length through its padding; the k-mer path reads it too."""
    path = SequenceKmerPath(2)
    short, long = torch.tensor([[7, 8, 9, 10] * 10]), torch.tensor([[7, 8, 9, 10] * 40])
    with torch.no_grad():
        path.out_proj.weight.zero_()
        path.out_proj.weight[:, -1] = 1.0
        assert not torch.allclose(path(short), path(long))


def test_the_k_mer_path_alone_matches_a_k_mer_logistic_regression():
    """Labels set by a 4-mer planted twice: a linear read-out of the path's counts, trained
    briefly with Adam, is as accurate on held-out sequences as scikit-learn's logistic
    regression on the same counts (the model contains the k-mer regression)."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(7, 11, (600, 60), generator=generator)
    labels = torch.randint(0, 2, (600,), generator=generator)
    for row in labels.nonzero().flatten().tolist():
        ids[row, 10:14] = ids[row, 40:44] = torch.tensor([7, 8, 9, 10])  # ACGT
    train, test = slice(0, 400), slice(400, None)
    torch.manual_seed(0)
    path = SequenceKmerPath(2, sizes=(1, 2, 3, 4))
    optimizer = torch.optim.Adam(path.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(path(ids[train]), labels[train]).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (path(ids[test]).argmax(-1) == labels[test]).float().mean().item()
    counts = kmer_counts(ids, None, (1, 2, 3, 4), 4).numpy()
    regression = LogisticRegression(max_iter=3000).fit(counts[train], labels[train].numpy())
    reference = regression.score(counts[test], labels[test].numpy())
    assert reference > 0.8
    # two standard errors of a difference of two accuracies on the same 200 sequences
    standard_error = math.sqrt(2 * reference * (1 - reference) / 200)
    assert accuracy >= reference - 2 * standard_error


def test_a_sequence_model_adds_the_k_mer_path_to_its_logits():
    torch.manual_seed(0)
    model = HyenaGLTForSequenceClassification(HyenaGLTConfig(kmer_path=True, **SMALL)).eval()
    ids = torch.randint(7, 11, (2, 30))
    with torch.no_grad():
        with_path = model(ids).logits
        model.kmer_path.out_proj.bias.add_(torch.tensor([5.0, -5.0]))
        assert torch.allclose(model(ids).logits - with_path, torch.tensor([5.0, -5.0]),
                              atol=1e-5)


def test_strand_state_fusion_lets_a_causal_backbone_see_downstream_bases():
    torch.manual_seed(0)
    ids = torch.randint(7, 11, (1, 50))
    changed = ids.clone()
    changed[0, -1] = 7 if int(ids[0, -1]) != 7 else 8
    logits = {}
    for fusion in ("logits", "states"):
        model = HyenaGLTForTokenClassification(HyenaGLTConfig(
            task_type="token_classification", rc_fusion=fusion, use_dynamic_merging=False,
            kmer_path=False, **SMALL)).eval()  # the path reads both sides by itself
        with torch.no_grad():
            logits[fusion] = (model(ids).logits[0, 0], model(changed).logits[0, 0])
    # causal, one strand: the first base sees only itself (up to FFT rounding)
    assert torch.allclose(*logits["logits"], atol=1e-5)
    # fused: its reverse-strand state has read the whole sequence, the last base included
    assert not torch.allclose(*logits["states"], atol=1e-3)


def test_kmer_path_and_fused_head_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    config = HyenaGLTConfig(task_type="token_classification", kmer_path=True,
                            rc_fusion="states", kmer_windows=(5, 12), **SMALL)
    model = HyenaGLTForTokenClassification(config).eval()
    model.save_pretrained(tmp_path)
    loaded = HyenaGLTForTokenClassification.from_pretrained(tmp_path).eval()
    ids = torch.randint(7, 11, (2, 33))
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-6)


@pytest.mark.parametrize("field, value", [("rc_fusion", "sum"), ("kmer_windows", (0,)), ("kmer_windows", ())])
def test_bad_values_are_named(field, value):
    with pytest.raises(ConfigurationError, match=field):
        HyenaGLTConfig(**{field: value})


def test_models_without_a_k_mer_path_or_strand_fusion_say_so():
    with pytest.warns(HyenaGLTWarning, match="kmer_path is ignored"):
        HyenaGLTForCausalLM(HyenaGLTConfig(kmer_path=True, **SMALL))
    with pytest.warns(HyenaGLTWarning, match="rc_fusion are ignored"):
        HyenaGLTForCausalLM(HyenaGLTConfig(rc_fusion="states", **SMALL))


def test_protein_models_refuse_strand_fusion():
    with pytest.raises(ConfigurationError, match="reverse complement"):
        HyenaGLTForSequenceClassification(HyenaGLTConfig(
            task_type="protein_function", alphabet_size=33, rc_fusion="states", **SMALL))


@pytest.mark.parametrize("model_class, options", [
    (HyenaGLTForSequenceClassification, {}),
    (HyenaGLTForTokenClassification, {"task_type": "token_classification",
                                      "rc_fusion": "states"}),
])
def test_models_with_a_k_mer_path_export_to_onnx(model_class, options):
    """The counts are built from the batch's own shape (a dynamic batch axis exports)."""
    from hyena_glt.optimization.deployment import DeploymentConfig, ModelOptimizer

    torch.manual_seed(0)
    model = model_class(HyenaGLTConfig(kmer_path=True, use_dynamic_merging=False,
                                       **{**SMALL, **options})).eval()
    runner = ModelOptimizer(DeploymentConfig("onnx", "all")).optimize(model)
    assert runner.max_abs_diff <= runner.tolerance
    ids = torch.randint(7, 11, (3, SMALL["sequence_length"]))
    with torch.no_grad():
        expected = model(ids, torch.ones_like(ids)).logits.numpy()
    got = runner(ids, torch.ones_like(ids)).numpy()
    assert abs(got - expected).max() <= runner.tolerance


def test_protein_k_mer_path_reads_the_terminal_residues():
    """Two proteins with the same composition, one with its lysines at the N-terminus, one at
    the C-terminus: whole-sequence counts cannot tell them apart; the terminal blocks can."""
    path = SequenceKmerPath(2, letters=26, sizes=(1,), terminal=5)
    lysine, alanine = 7 + 8, 7  # ProteinTokenizer: ACDEFGHIK...
    n_terminal = torch.tensor([[lysine] * 5 + [alanine] * 20])
    c_terminal = torch.tensor([[alanine] * 20 + [lysine] * 5])
    padded = torch.cat([c_terminal, torch.zeros(1, 7, dtype=torch.long)], 1)
    with torch.no_grad():
        assert not torch.allclose(path(n_terminal), path(c_terminal))
        assert torch.allclose(path(c_terminal),
                              path(padded, (padded != 0).long()), atol=1e-6)
    flat = SequenceKmerPath(2, letters=26, sizes=(1,))
    with torch.no_grad():
        assert torch.allclose(flat(n_terminal), flat(c_terminal), atol=1e-6)


def test_the_k_mer_path_is_on_by_default_for_per_base_heads_only():
    per_base = HyenaGLTForTokenClassification(HyenaGLTConfig(task_type="token_classification",
                                                             **SMALL))
    assert isinstance(per_base.kmer_path, FrameKmerPath)
    sequence = HyenaGLTForSequenceClassification(HyenaGLTConfig(
        task_type="sequence_classification", **SMALL))
    assert sequence.kmer_path is None
    off = HyenaGLTConfig(task_type="genome_annotation", kmer_path=False, **SMALL)
    assert HyenaGLTForTokenClassification(off).kmer_path is None


def test_a_per_base_model_saved_before_the_field_existed_loads_without_the_path(tmp_path):
    old = HyenaGLTForTokenClassification(HyenaGLTConfig(task_type="token_classification",
                                                        kmer_path=False, **SMALL)).eval()
    old.save_pretrained(tmp_path)
    config_file = tmp_path / "config.json"
    fields = json.loads(config_file.read_text())
    del fields["kmer_path"]
    config_file.write_text(json.dumps(fields))
    loaded = HyenaGLTForTokenClassification.from_pretrained(tmp_path).eval()
    assert loaded.kmer_path is None
    ids = torch.randint(7, 11, (2, 33))
    with torch.no_grad():
        assert torch.allclose(old(ids).logits, loaded(ids).logits, atol=1e-6)


def test_fine_tuning_a_base_model_for_per_base_labels_adds_the_path(tmp_path):
    from hyena_glt.training import FineTuner

    HyenaGLTForCausalLM(HyenaGLTConfig(**SMALL)).save_pretrained(tmp_path / "base")
    fields = json.loads((tmp_path / "base" / "config.json").read_text())
    assert fields["kmer_path"] is None  # a base leaves the choice to the task head
    finetuner = FineTuner(tmp_path / "base", task_type="token_classification",
                          output_dir=tmp_path / "run")
    assert isinstance(finetuner.model.kmer_path, FrameKmerPath)
    # A base saved when the field defaulted to False: the new head still follows the task.
    HyenaGLTForCausalLM(HyenaGLTConfig(kmer_path=False, **SMALL)).save_pretrained(
        tmp_path / "old-base")
    finetuner = FineTuner(tmp_path / "old-base", task_type="token_classification",
                          output_dir=tmp_path / "run2")
    assert isinstance(finetuner.model.kmer_path, FrameKmerPath)
    asked = FineTuner(tmp_path / "old-base", task_type="token_classification", kmer_path=False,
                      output_dir=tmp_path / "run3")
    assert asked.model.kmer_path is None


@pytest.mark.parametrize("model_class, task_type", [
    (HyenaGLTForSequenceClassification, "sequence_classification"),
    (HyenaGLTForTokenClassification, "token_classification"),
])
def test_strand_averaging_includes_the_k_mer_path(model_class, task_type):
    torch.manual_seed(0)
    model = model_class(HyenaGLTConfig(task_type=task_type, kmer_path=True, rc_average=True,
                                       use_dynamic_merging=False, **SMALL)).eval()
    ids = torch.randint(7, 11, (2, 90))
    rc_ids = torch.flip(torch.tensor([0, 1, 2, 3, 4, 5, 6, 10, 9, 8, 7])[ids], [1])
    with torch.no_grad():
        forward, reverse = model(ids).logits, model(rc_ids).logits
    if forward.dim() == 3:  # per base: the same base, read on the other strand
        reverse = reverse.flip(1)
    # each side carries float32 rounding of the FFT convolutions (length 90 -> FFT size 256)
    tolerance = 2 * parity_tolerance(model, forward, fft_size=256)
    assert (forward - reverse).abs().max() <= tolerance
