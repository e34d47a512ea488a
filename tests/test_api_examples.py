"""Every ```python example of ``shared/API.md`` runs as written.

The examples are read top to bottom in one namespace, as a reader of the page would run them:
a later example may use what an earlier one defined (the optimization example uses the
``QuantizationConfig`` imported by the quantization example). What the page leaves to the
reader (``input_ids``, a ``train_dataset``, ``protein_data.csv``, ...) is given before the
example that needs it, from real data where the page's shapes allow, and small. One example
cannot be right and is refused instead: the page fine-tunes the DNA base model on a protein
task; that refusal, naming the fix, is what the test expects there.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

API_MD = Path(__file__).resolve().parents[2] / "shared" / "API.md"
_BLOCK = re.compile(r"^(#{2,4}) (.+?)$|^```python\n(.*?)^```", re.M | re.S)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def examples() -> list[tuple[str, str]]:
    """``(heading, code)`` of each python block, headed by the nearest heading above it."""
    heading, found = "", []
    for match in _BLOCK.finditer(API_MD.read_text()):
        if match.group(2):
            heading = match.group(2).strip()
        else:
            found.append((heading, match.group(3)))
    return found


def _promoters(shared: Path, per_class: int) -> tuple[list[str], list[int]]:
    """The first ``per_class`` promoters and non-promoters (64 nt) of Genomic Benchmarks."""
    path = shared / "data/genomic_benchmarks/human_nontata_promoters/test.csv.gz"
    picked: dict[int, list[str]] = {0: [], 1: []}
    with gzip.open(path, "rt") as handle:
        next(handle)
        for line in handle:
            sequence, label = line.strip().split(",")[:2]
            if len(picked[int(label)]) < per_class:
                picked[int(label)].append(sequence[:64])
    return picked[0] + picked[1], [0] * per_class + [1] * per_class


def _given(shared: Path) -> dict[str, Callable[[dict[str, Any]], dict]]:
    """Heading -> names (and files) the page assumes before that example."""
    from hyena_glt.config import HyenaGLTConfig
    from hyena_glt.data import DNATokenizer, GenomicDataset, ProteinTokenizer
    from hyena_glt.model import (
        HyenaGLTForSequenceClassification,
        HyenaGLTForTokenClassification,
    )

    sequences, labels = _promoters(shared, 6)
    tokenizer = DNATokenizer()
    ids = tokenizer.batch_encode([sequences[0], sequences[-1]])["input_ids"][:, :48]
    ref = sequences[0]
    alt = ref[:30] + ("A" if ref[30] != "A" else "C") + ref[31:]
    files = {"protein_data.csv": "sequence,label\nMKTLLLTLLCLVAAYLA,membrane\n"
                                 "MSDNELQKQLEELKAQ,cytoplasm\n",
             "annotation_data.csv": f"sequence,labels\n{ref},{'01' * 32}\n",
             "variant_data.csv": f"ref_sequence,alt_sequence,label\n{ref},{alt},1\n"}

    def write(name: str, extra: dict) -> dict:
        Path(name).write_text(files[name])  # into the example's working directory
        return extra
    small = dict(vocab_size=64, d_model=16, n_layers=2, num_heads=2, sequence_length=128,
                 filter_order=8, alphabet_size=22, batch_size=4, num_epochs=1, dropout=0.0)

    def dataset(ns: dict) -> GenomicDataset:
        return GenomicDataset(sequences=sequences, labels=labels, tokenizer=tokenizer)

    def classifiers(count: int) -> list[torch.nn.Module]:
        return [HyenaGLTForSequenceClassification(HyenaGLTConfig(**small)).eval()
                for _ in range(count)]

    def loader(ns: dict) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset(ns), batch_size=4)

    return {
        "HyenaGLTConfig": lambda ns: {"torch": torch},  # later examples use torch unimported
        "ProteinFunctionDataset": lambda ns: write("protein_data.csv",
                                                   {"protein_tokenizer": ProteinTokenizer()}),
        "GenomeAnnotationDataset": lambda ns: write("annotation_data.csv",
                                                    {"dna_tokenizer": tokenizer}),
        "VariantEffectDataset": lambda ns: write("variant_data.csv", {}),
        "HyenaGLTModel": lambda ns: {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                     "config": HyenaGLTConfig(**small, num_classes=2)},
        "HyenaGLTForSequenceClassification": lambda ns: {"labels": torch.tensor([0, 1])},
        "HyenaGLTForTokenClassification": lambda ns: {"labels": torch.zeros_like(ids)},
        "HyenaGLTForRegression": lambda ns: {"labels": torch.randn(2)},
        "HyenaGLTTrainer": lambda ns: {
            "model": classifiers(1)[0], "tokenizer": tokenizer, "train_dataset": dataset(ns),
            "val_dataset": dataset(ns)},
        "MultiTaskLearner": lambda ns: dict(zip(
            ("protein_model", "annotation_model"),
            [HyenaGLTForSequenceClassification(HyenaGLTConfig(**small)),
             HyenaGLTForTokenClassification(HyenaGLTConfig(**small))], strict=True)),
        "GenomicMetrics": lambda ns: {
            "predictions": np.tile([[0.8, 0.2], [0.3, 0.7]], (4, 1)),
            "targets": np.tile([0, 1], 4)},
        "ModelBenchmark": lambda ns: {
            **dict(zip(("model1", "model2"), classifiers(2), strict=True)),
            "dataset1": dataset(ns), "dataset2": dataset(ns)},
        "AttentionAnalyzer": lambda ns: {"model": classifiers(1)[0],
                                         "sequences": sequences[:2]},
        "ModelQuantizer": lambda ns: {"model": classifiers(1)[0]},
        "ModelPruner": lambda ns: {"train_dataloader": loader(ns)},
        "KnowledgeDistiller": lambda ns: dict(zip(("teacher_model", "student_model"),
                                                  classifiers(2), strict=True)),
        "Training Example": lambda ns: {"train_sequences": sequences, "train_labels": labels},
        "Evaluation Example": lambda ns: {
            **dict(zip(("model1", "model2", "model3"), classifiers(3), strict=True)),
            "test_dataset": dataset(ns)},
        "Optimization Example": lambda ns: {"model": classifiers(1)[0],
                                            "train_dataloader": loader(ns)},
    }


#: Examples that cannot be right as written: the error they must raise, and its message.
REFUSED = {"FineTuner": r"alphabet_size=22.*pretrained_model=DIR",
           "Fine-Tuning Example": r"alphabet_size=22.*pretrained_model=DIR"}


def test_every_api_example_runs_as_written(tmp_path, monkeypatch):
    if not API_MD.is_file():
        pytest.skip(f"{API_MD} not found (the shared folder is absent)")
    from hyena_glt.errors import ConfigurationError

    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # only the bundled models
    given = _given(API_MD.parent)
    namespace: dict[str, Any] = {}
    ran = []
    for index, (heading, code) in enumerate(examples()):
        # Each example in its own directory, as a reader trying it would: two trainers in one
        # directory would resume each other's runs (refused as another model's checkpoint).
        (tmp_path / str(index)).mkdir()
        monkeypatch.chdir(tmp_path / str(index))
        torch.manual_seed(0)
        namespace.update(given.get(heading, lambda ns: {})(namespace))
        if heading in REFUSED:
            with pytest.raises(ConfigurationError, match=REFUSED[heading]):
                exec(compile(code, f"API.md: {heading}", "exec"), namespace)
        else:
            exec(compile(code, f"API.md: {heading}", "exec"), namespace)
        ran.append(heading)
    assert len(ran) == len(examples()) >= 35
