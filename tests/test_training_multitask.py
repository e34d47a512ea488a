"""MultiTaskLearner: promoter classification + per-base CDS labelling on one shared backbone."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pysam
import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.datasets import GenomicDataset
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError
from hyena_glt.model import HyenaGLTForSequenceClassification, HyenaGLTForTokenClassification
from hyena_glt.training import MultiTaskLearner, seed_everything

PROMOTERS = Path("genomic_benchmarks/human_nontata_promoters/test.csv.gz")
SARS = Path("genome_annotation/sars_cov_2_NC_045512.2")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def datasets(shared_data):
    tokenizer = DNATokenizer(vocab_size=64)
    frame = pd.read_csv(shared_data / PROMOTERS).sample(48, random_state=2)
    promoters = GenomicDataset(sequences=frame["sequence"].tolist(),
                               labels=frame["label"].tolist(), tokenizer=tokenizer,
                               max_length=None, padding=None)
    # read sequentially: pysam.FastaFile would write a .fai/.gzi next to the read-only data
    with pysam.FastxFile(str(shared_data / SARS / "NC_045512.2.fa.gz")) as handle:
        genome = next(iter(handle)).sequence
    with gzip.open(shared_data / SARS / "NC_045512.2.cds_mask.txt.gz", "rt") as handle:
        mask = handle.read().splitlines()[1]
    # 32 windows of 64 nt from the 5' end: the UTR (non-CDS) and the start of ORF1ab (CDS).
    windows = [{"input_ids": torch.tensor(tokenizer.encode(genome[i:i + 64])),
                "labels": torch.tensor([int(c) for c in mask[i:i + 64]])}
               for i in range(0, 32 * 64, 64)]
    return promoters, windows


def models() -> list[torch.nn.Module]:
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=256,
                            num_heads=2, alphabet_size=22, batch_size=8, num_epochs=1,
                            learning_rate=3e-3, warmup_steps=2, dropout=0.0)
    seed_everything(0)
    return [HyenaGLTForSequenceClassification(config), HyenaGLTForTokenClassification(config)]


def test_two_heads_share_one_backbone(datasets, tmp_path):
    promoters, windows = datasets
    classify, annotate = models()
    heads_before = [classify.head.state_dict(), annotate.head.state_dict()]
    heads_before = [{k: v.clone() for k, v in h.items()} for h in heads_before]
    learner = MultiTaskLearner(tasks=["protein_function", "genome_annotation"],
                               models=[classify, annotate], weights=[0.5, 1.0],
                               schedule="round_robin")
    assert annotate.backbone is classify.backbone
    backbone_before = {k: v.clone() for k, v in classify.backbone.state_dict().items()}
    result = learner.train(datasets={"protein_function": promoters, "genome_annotation": windows},
                           val_datasets=[promoters, windows], output_dir=tmp_path, log_steps=2)
    assert result["history"][0]["step"] == 2  # round robin: both tasks in every 2 steps
    assert {"protein_function/loss", "genome_annotation/loss"} <= set(result["history"][0])
    assert result["history"][-2]["step"] == 6 + 4  # ceil(48/8) + ceil(32/8) steps per epoch
    assert 0 <= result["genome_annotation/eval_accuracy"] <= 1
    assert 0 <= result["protein_function/eval_auroc"] <= 1
    for model, before in zip((classify, annotate), heads_before, strict=True):
        assert any(not torch.equal(v, before[k]) for k, v in model.head.state_dict().items())
    assert any(not torch.equal(v, backbone_before[k])
               for k, v in classify.backbone.state_dict().items())
    reloaded = HyenaGLTForTokenClassification.from_pretrained(tmp_path / "genome_annotation")
    batch = windows[0]["input_ids"][None]
    annotate.eval()
    reloaded.eval()
    assert torch.equal(reloaded(batch).logits, annotate(batch).logits)
    assert (tmp_path / "protein_function" / "model.safetensors").is_file()


def test_sampling_schedules_and_checks():
    learner = MultiTaskLearner(tasks=["a", "b"], models=models(), schedule="temperature",
                               temperature=2.0)
    assert learner.task_probabilities([900, 100]) == pytest.approx([0.75, 0.25])  # 30:10
    proportional = MultiTaskLearner(tasks=["a", "b"], models=models())
    assert proportional.task_probabilities([900, 100]) == pytest.approx([0.9, 0.1])
    order = proportional._task_order([900, 100], 2000, seed=0)
    assert order == proportional._task_order([900, 100], 2000, seed=0)  # seeded
    assert 0.87 < order.count(0) / 2000 < 0.93
    with pytest.raises(ConfigurationError, match="as many models and weights"):
        MultiTaskLearner(tasks=["a", "b"], models=models(), weights=[1.0])
    small = HyenaGLTForTokenClassification(HyenaGLTConfig(
        vocab_size=64, d_model=8, n_layers=2, sequence_length=256, num_heads=2))
    with pytest.raises(ConfigurationError, match="backbone differs"):
        MultiTaskLearner(tasks=["a", "b"], models=[models()[0], small])
