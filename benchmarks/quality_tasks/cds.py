"""Issue 8, per-base CDS vs non-coding: Hyena-GLT against k-mer/ORF logistic regressions and a
dilated CNN, trained on the same windows with the same labels and scored on the same bases.

Data: the Arabidopsis chloroplast (NC_000932.1, 154 kb, 51% CDS, 69% of it on the minus strand)
and SARS-CoV-2 (NC_045512.2, 30 kb, 98% CDS, all on the plus strand) with their GFF3, ingested by
the package (``ingest_annotation(reverse_complement=True)`` -> "annotation" shards ->
``GenomeAnnotationDataset``) into non-overlapping 1,024-nt windows and their reverse complements;
a base is 1 inside any GFF3 ``CDS`` line, whatever its strand.

Tasks (metrics pool every base of the forward-strand test windows):

* ``cds_within_chloroplast``: the package's own held-out split,
  ``ingest_annotation(split=0.8)``: 20% of the windows, drawn over the whole genome, with the
  held-out windows whose sequence repeats training sequence on either strand dropped (the
  inverted repeats IRa/IRb are each other's reverse complement, so a held-out window of one
  would be scored against its training copy in the other).
* ``cds_chloroplast_to_sarscov2`` and ``cds_sarscov2_to_chloroplast``: train on one genome,
  test on every window of the other.

Training, the same for every model: the train windows on both strands (a one-strand genome
like SARS-CoV-2 then still shows minus-strand genes); a class-balanced loss
(:class:`BalancedLabels`: a 98%-CDS virus would otherwise teach "everything is CDS"); every 5th
training window (``grid % 5 == 0``) is a validation part that picks the CNN's
epoch and Hyena-GLT's step by AUROC.

Models: ``hyena_glt`` (a small bidirectional Hyena-GLT trained from scratch with
:class:`HyenaGLTTrainer`, dynamic merging on, the per-base k-mer path (codon usage of each
reading frame, ``config.kmer_path``), reverse-complement averaging at test time; settings in
:data:`HYENA`), ``kmer_lr`` (scikit-learn logistic regression on per-base context
features: k-mer composition, codon-position asymmetry and the stop-codon-free run lengths of
the six reading frames), ``orf_lr`` (the same without the k-mer columns), ``cnn`` (a per-base
dilated CNN) and ``all_cds`` (every base called CDS: the F1 to beat, 0.99 on the 98%-CDS virus,
where only AUROC separates the models). Features of a base come from its own window only, as
for Hyena-GLT. Metrics: F1 of the CDS class, accuracy, AUROC
(:meth:`GenomicMetrics.classification`), at P = 0.5: the class-balanced loss makes that the
cut of a uniform prior, and the test genome is near 50% CDS. ``f1_validation_threshold`` is the
F1 at the threshold ``hyena-glt finetune`` would store (``validation_threshold``: the MCC-best
cut on the validation windows, :func:`~hyena_glt.training.threshold.best_mcc_threshold`).
Measured: on 15 validation windows it is noisy, and it lowered every model's test F1 but the
CNN's (benchmarks/quality_results.md), so it is reported beside F1, not instead of it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import GenomeAnnotationDataset
from hyena_glt.data.datasets import IGNORE_INDEX
from hyena_glt.data.shards import read_manifest, read_table
from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.evaluation.bootstrap import bootstrap_metric
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.token_baselines import (
    OrfKmerLogisticRegression,
    predict_per_base,
    stacked,
    train_per_base_cnn,
)
from hyena_glt.ingest.annotation import ingest_annotation
from hyena_glt.ingest.duplicates import TrainingKmers, canonical_kmers
from hyena_glt.model import HyenaGLTForTokenClassification
from hyena_glt.model.pretrained import TOKENIZER_NAME
from hyena_glt.training import FineTuner, HyenaGLTTrainer
from hyena_glt.training.registry import resolve_model
from hyena_glt.training.state import seed_everything
from hyena_glt.training.threshold import best_mcc_threshold
from quality_tasks import make_rows, shared_data

__all__ = ["run", "GENOMES", "TASKS", "MODELS", "HYENA", "CNN_EPOCHS", "HyenaSettings",
           "load_windows", "split_windows", "repeats_training", "BalancedLabels", "train_hyena",
           "validation_threshold", "score", "fit"]

logger = logging.getLogger(__name__)

ANNOTATION = shared_data() / "genome_annotation"


@dataclass(frozen=True)
class Genome:
    """One annotated genome of ``shared/data/genome_annotation``."""

    accession: str
    fasta: Path
    gff3: Path


GENOMES = {
    "chloroplast": Genome("NC_000932.1",
                          ANNOTATION / "arabidopsis_chloroplast_NC_000932.1/NC_000932.1.fa.gz",
                          ANNOTATION / "arabidopsis_chloroplast_NC_000932.1/NC_000932.1.gff3.gz"),
    "sarscov2": Genome("NC_045512.2",
                       ANNOTATION / "sars_cov_2_NC_045512.2/NC_045512.2.fa.gz",
                       ANNOTATION / "sars_cov_2_NC_045512.2/"
                       "GCF_009858895.2_ASM985889v3_genomic.gff3.gz"),
}
TASKS = {  # task -> (train genome, test genome); the same genome = interleaved windows
    "cds_within_chloroplast": ("chloroplast", "chloroplast"),
    "cds_chloroplast_to_sarscov2": ("chloroplast", "sarscov2"),
    "cds_sarscov2_to_chloroplast": ("sarscov2", "chloroplast"),
}
MODELS = ("all_cds", "kmer_lr", "orf_lr", "cnn", "hyena_glt")
TRAIN_FRACTION = 0.8  # within-genome: ingest_annotation(split=0.8) holds out 20% of windows
VALIDATION_EVERY = 5  # training windows i with i % 5 == 0 pick the step/epoch (early stopping)
REPEAT_SHARE = 0.5  # ingest_annotation's duplicate_threshold: a window this much repeated is out


@dataclass(frozen=True)
class HyenaSettings:
    """How Hyena-GLT is trained (``quick`` shrinks it to a smoke test)."""

    #: Registered name or model directory to fine-tune; None trains ``scratch`` from random
    #: weights with :class:`HyenaGLTTrainer`.
    pretrained: str | None = None
    #: HyenaGLTConfig fields of the model trained from scratch.
    scratch: dict[str, Any] = field(default_factory=lambda: {
        "d_model": 64, "n_layers": 2, "num_heads": 4, "filter_order": 32, "vocab_size": 4096,
        "alphabet_size": 22, "sequence_length": 1024, "bidirectional": True,
        "use_dynamic_merging": True, "dropout": 0.1, "kmer_path": True})
    #: HyenaGLTConfig fields changed when fine-tuning ``pretrained``.
    finetune: dict[str, Any] = field(default_factory=lambda: {
        "use_dynamic_merging": False, "dropout": 0.1})
    window: int = 1024
    steps: int = 200
    batch_size: int = 8
    backbone_lr: float = 3e-3
    head_lr: float = 3e-3
    warmup_steps: int = 10
    eval_steps: int = 20
    #: Evaluations without a better validation AUROC before training stops.
    patience: int = 4
    #: Average test predictions with the reverse complement's (``rc_average`` at test time).
    rc_at_test: bool = True


HYENA = HyenaSettings()
CNN_EPOCHS = 10
_QUICK_WINDOWS = 12  # windows per genome in quick mode


# --- data --------------------------------------------------------------------------------------
def _shard_root(genome: str, window: int, out_dir: Path, split: bool) -> Path:
    return out_dir / f"{genome}_w{window}_both_strands{'_split' if split else ''}"


def load_windows(genome: str, window: int, out_dir: Path, tokenizer: Any, part: str = "all"
                 ) -> tuple[GenomeAnnotationDataset, np.ndarray, np.ndarray]:
    """Non-overlapping windows of ``genome`` and their reverse complements
    (``ingest_annotation(reverse_complement=True)``), each window's grid index (forward start //
    window) and whether it is the forward strand. ``part`` ``"train"`` or ``"test"`` reads that
    part of the package's held-out split (``split=TRAIN_FRACTION``); ``"all"`` every window."""
    spec = GENOMES[genome]
    split = None if part == "all" else TRAIN_FRACTION
    root = _shard_root(genome, window, out_dir, split is not None)
    shards = root if split is None else root / part
    if not (shards / "manifest.json").is_file():
        ingest_annotation(spec.fasta, spec.gff3, root, feature="CDS", window=window,
                          reverse_complement=True, tokenizer=tokenizer, split=split)
    table = read_table(shards, columns=["start", "strand"])
    grid = np.asarray(table.column("start").to_pylist()) // window
    forward = np.asarray(table.column("strand").to_pylist()) == "+"
    return GenomeAnnotationDataset(shards, max_length=window), grid, forward


def split_windows(task: str, window: int, out_dir: Path, tokenizer: Any, quick: bool
                  ) -> tuple[Subset, Subset, Subset, str]:
    """Train windows (both strands), validation and test windows (forward strand) of ``task``
    (see the module docstring), and a note on the split.

    Validation windows (for early stopping and the decision threshold) are the training
    windows with ``grid % 5 == 0`` (for SARS-CoV-2 this takes in the 5' UTR, most of its few
    non-coding bases); they are in neither train nor test. As for the test windows, those
    repeating training sequence (:func:`repeats_training`) are dropped.
    """
    train_genome, test_genome = TASKS[task]
    within = train_genome == test_genome
    train_data, grid, forward = load_windows(train_genome, window, out_dir, tokenizer,
                                             "train" if within else "all")
    test_data, _, test_forward = load_windows(test_genome, window, out_dir, tokenizer,
                                              "test" if within else "all")
    test_index = np.flatnonzero(test_forward)
    if within:
        root = _shard_root(test_genome, window, out_dir, split=True)
        counts = read_manifest(root / "test")["metadata"]["counts"]
        note = (f"{1 - TRAIN_FRACTION:.0%} of the {window}-nt windows held out, spread over the "
                f"genome; {counts['duplicate_windows'] // 2} held-out windows repeating train "
                "sequence (the inverted repeat) dropped (ingest_annotation split)")
    else:
        note = f"train {GENOMES[train_genome].accession}, test {GENOMES[test_genome].accession}"
    val_part = grid % VALIDATION_EVERY == 0
    train_index, val_index = np.flatnonzero(~val_part), np.flatnonzero(val_part & forward)
    repeats = repeats_training(train_data, train_index, val_index, tokenizer)
    val_index = val_index[~repeats]
    if quick:
        train_index = train_index[grid[train_index] < grid[train_index].min() + _QUICK_WINDOWS]
        val_index, test_index = val_index[:2], test_index[:_QUICK_WINDOWS // 2]
    note += ("; train windows on both strands, class-balanced loss, 1/5 kept for validation "
             f"({repeats.sum()} repeating train sequence dropped)")
    return (Subset(train_data, train_index.tolist()), Subset(train_data, val_index.tolist()),
            Subset(test_data, test_index.tolist()), note)


def repeats_training(windows: Dataset, train_index: np.ndarray, candidates: np.ndarray,
                     tokenizer: Any) -> np.ndarray:
    """Whether each candidate window shares at least :data:`REPEAT_SHARE` of its canonical
    31-mers with the training windows: the inverted repeats' copies (each other's reverse
    complement) would otherwise pick the step, the epoch and the threshold by recall (the
    rule ``ingest_annotation`` applies to test windows)."""
    def text(index: int) -> str:
        return tokenizer.decode(windows[int(index)]["input_ids"])

    training = TrainingKmers(text(i) for i in train_index)
    return np.array([training.shared_fraction(*canonical_kmers(text(i))) >= REPEAT_SHARE
                     for i in candidates], dtype=bool)


class BalancedLabels(Dataset):
    """Training windows whose majority-class bases are hidden at random (label -100), so that
    both classes weigh the same in any model's loss.

    A 98%-CDS virus would otherwise teach "everything is CDS", which fails on a 51%-CDS
    chloroplast: balancing assumes a uniform class prior instead of the training genome's.
    Each read draws afresh (a different subset of majority bases every epoch).
    """

    def __init__(self, windows: Dataset, seed: int) -> None:
        self.windows = windows
        labels = stacked(windows)[1]
        counts = np.bincount(labels[labels != IGNORE_INDEX], minlength=2)
        self.majority = int(counts.argmax())
        self.keep = counts.min() / max(counts.max(), 1)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = dict(self.windows[index])
        labels = item["labels"].clone()
        hide = (labels == self.majority) & torch.from_numpy(
            self.rng.random(len(labels)) >= self.keep)
        item["labels"] = labels.masked_fill(hide, IGNORE_INDEX)
        return item


# --- Hyena-GLT ---------------------------------------------------------------------------------
def train_hyena(train: Dataset, val: Dataset, settings: HyenaSettings, seed: int,
                out_dir: Path) -> nn.Module:
    """A per-base Hyena-GLT classifier trained on ``train`` for at most ``settings.steps``
    steps; the weights with the best validation AUROC (checked every ``eval_steps``) win.
    ``out_dir`` starts empty: an earlier run's checkpoints are never resumed."""
    shutil.rmtree(out_dir, ignore_errors=True)
    epochs = -(-settings.steps * settings.batch_size // len(train))
    schedule = {"max_steps": settings.steps, "show_progress": False,
                "log_steps": settings.eval_steps, "eval_steps": settings.eval_steps,
                "metric_for_best": "eval_auroc", "greater_is_better": True,
                "early_stopping_patience": settings.patience}
    if settings.pretrained is None:
        seed_everything(seed)
        config = HyenaGLTConfig(task_type="token_classification", num_classes=2,
                                learning_rate=settings.backbone_lr,
                                batch_size=settings.batch_size, num_epochs=epochs,
                                warmup_steps=settings.warmup_steps, seed=seed,
                                **settings.scratch)
        model = HyenaGLTForTokenClassification(config)
        HyenaGLTTrainer(model, config, train, val, output_dir=out_dir, **schedule).train()
    else:
        finetuner = FineTuner(pretrained_model=settings.pretrained,
                              task_type="token_classification", num_classes=2,
                              backbone_lr=settings.backbone_lr, head_lr=settings.head_lr,
                              output_dir=out_dir, batch_size=settings.batch_size, seed=seed,
                              warmup_steps=settings.warmup_steps, **settings.finetune)
        model = finetuner.finetune(train, val, num_epochs=epochs, **schedule)
    model.config.rc_average = model.config.rc_average or settings.rc_at_test
    return model


# --- the task ----------------------------------------------------------------------------------
def _labelled(probability: np.ndarray, labels: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(CDS), label and window index of the labelled bases of ``labels (N, L)``."""
    windows = np.repeat(np.arange(len(labels)), labels.shape[1])
    labels = labels.reshape(-1)
    keep = labels != IGNORE_INDEX
    return probability[keep], labels[keep], windows[keep]


def validation_threshold(probability: np.ndarray, labels: np.ndarray) -> float:
    """The MCC-best decision threshold on the validation bases (``labels (N, L)``)."""
    return best_mcc_threshold(*_labelled(probability, labels)[:2])


def score(probability: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """F1 of the CDS class and accuracy at 0.5, F1 at ``threshold``, AUROC over labelled
    bases of ``labels (N, L)``, and the 95% bootstrap interval of AUROC resampling whole
    windows (the report's bootstrap)."""
    p, y, windows = _labelled(probability, labels)
    scores = np.stack([1 - p, p], 1)
    metrics = GenomicMetrics().classification(scores, y, label_names=["other", "CDS"])
    at_threshold = GenomicMetrics().classification(scores, y, label_names=["other", "CDS"],
                                                   decision_threshold=threshold)
    interval = bootstrap_metric("auroc", y, p, windows)
    return {"f1": float(metrics["f1/CDS"]), "accuracy": float(metrics["accuracy"]),
            "auroc": float(metrics.get("auroc", float("nan"))),
            "auroc_ci_low": interval.low, "auroc_ci_high": interval.high,
            "validation_threshold": threshold,
            "f1_validation_threshold": float(at_threshold["f1/CDS"])}


def fit(name: str, train: BalancedLabels, val: Dataset, seed: int, quick: bool,
        hyena: HyenaSettings, run_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """Train model ``name`` on ``train`` (``val`` picks the CNN's epoch and Hyena-GLT's
    step); its predictor, ``(N, L)`` token ids -> ``(N * L,)`` P(CDS)."""
    if name == "all_cds":  # the constant predictor: F1 and accuracy any model must beat
        return lambda ids: np.ones(ids.size)
    if name in ("kmer_lr", "orf_lr"):
        return OrfKmerLogisticRegression(seed=seed, kmers=name == "kmer_lr").fit(
            *stacked(train)).predict_proba
    if name == "cnn":
        cnn = train_per_base_cnn(train, val, 1 if quick else CNN_EPOCHS, seed)
        return lambda ids: predict_per_base(cnn, ids)
    if name == "hyena_glt":
        model = train_hyena(train, val, hyena, seed, run_dir)
        return lambda ids: predict_per_base(model, ids)
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


def run(seed: int, quick: bool, out_dir: Path, hyena: HyenaSettings | None = None,
        tasks: tuple[str, ...] = tuple(TASKS), models: tuple[str, ...] = MODELS) -> list[dict]:
    """Train and score ``models`` on each CDS task; tidy rows (see module docstring).

    ``train_s`` is the wall time of training, choosing the threshold and predicting the test
    bases.
    """
    torch.set_num_threads(1)
    hyena = hyena or HYENA
    if quick:
        hyena = dataclasses.replace(hyena, window=256, steps=3, batch_size=4, eval_steps=3)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = (DNATokenizer() if hyena.pretrained is None else
                 CharTokenizer.load(resolve_model(hyena.pretrained) / TOKENIZER_NAME))
    rows: list[dict] = []
    for task in tasks:
        windows, val, test, note = split_windows(task, hyena.window, out_dir, tokenizer,
                                                 quick)
        train = BalancedLabels(windows, seed)
        test_ids, test_labels = stacked(test)
        labels = test_labels.reshape(-1)
        n_train = int((stacked(windows)[1] != IGNORE_INDEX).sum())
        val_ids, val_labels = stacked(val)
        for name in models:
            started = time.perf_counter()
            predict = fit(name, train, val, seed, quick, hyena,
                          out_dir / f"{task}_{name}_seed{seed}")
            threshold = validation_threshold(predict(val_ids), val_labels)
            probability = predict(test_ids)
            train_s = time.perf_counter() - started
            metrics = score(probability, test_labels, threshold)
            logger.info("%s %s seed %d: %s (%.0f s)", task, name, seed, metrics, train_s)
            rows += make_rows(task, name, seed, metrics, train_s=train_s, n_train=n_train,
                              n_test=int((labels != IGNORE_INDEX).sum()), note=note)
    return rows
