"""FineTuner on the promoter data: from a directory and a registered name, strategies, early
stopping, the model registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from hyena_glt.cli import main
from hyena_glt.data.datasets import (
    GenomeAnnotationDataset,
    GenomicDataset,
    VariantEffectDataset,
    collate_batch,
)
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError, ModelError
from hyena_glt.model import (
    HyenaGLTForSequenceClassification,
    HyenaGLTForVariantEffect,
)
from hyena_glt.training import (
    FineTuner,
    HyenaGLTTrainer,
    register_model,
    registered_models,
    resolve_model,
)
from hyena_glt.training.finetune import backbone_units

PROMOTERS = Path("genomic_benchmarks/human_nontata_promoters/test.csv.gz")
SGE = Path("variants/brca1_sge_findlay2018/brca1_sge_variants.csv.gz")
BRCA1_REFERENCE = Path("variants/brca1_grch37/ref_brca1.fa.gz")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def private_registry(tmp_path, monkeypatch):
    """Never read or write the user's ~/.cache registry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)


@pytest.fixture(scope="module")
def promoters(shared_data) -> tuple[GenomicDataset, GenomicDataset]:
    """160 training and 40 validation promoter/non-promoter sequences (251 nt)."""
    frame = pd.read_csv(shared_data / PROMOTERS).sample(200, random_state=1)
    tokenizer = DNATokenizer(vocab_size=64)

    def dataset(rows: pd.DataFrame) -> GenomicDataset:
        return GenomicDataset(sequences=rows["sequence"].tolist(), labels=rows["label"].tolist(),
                              tokenizer=tokenizer, max_length=None, padding=None)

    return dataset(frame.iloc[:160]), dataset(frame.iloc[160:])


@pytest.fixture(scope="module")
def pretrained(tiny_causal_lm) -> Path:
    return tiny_causal_lm(256)


def test_finetune_from_a_directory_lowers_the_validation_loss(pretrained, promoters, tmp_path):
    train, val = promoters
    finetuner = FineTuner(pretrained_model=pretrained, task_type="sequence_classification",
                          num_classes=2, head_lr=1e-2, backbone_lr=3e-3)
    before = HyenaGLTTrainer(finetuner.model, finetuner.config, train, val,
                             output_dir=tmp_path / "probe").evaluate()
    model = finetuner.finetune(train, val, num_epochs=2, output_dir=tmp_path / "run")
    assert isinstance(model, HyenaGLTForSequenceClassification)
    metrics = finetuner.trainer.get_metrics()
    assert metrics["eval_loss"] < before["eval_loss"]
    assert {"eval_accuracy", "eval_auroc", "eval_f1_macro"} <= set(metrics)
    assert model.config.id2label == {0: "0", 1: "1"}  # taken from the dataset
    saved = HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "run" / "model")
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(),
                                                 model.state_dict().values(), strict=True))
    assert (tmp_path / "run" / "model" / "tokenizer.json").is_file()
    lm = load_file(str(pretrained / "model.safetensors"))
    assert not torch.equal(model.backbone.embeddings.token.weight,
                           lm["backbone.embeddings.token.weight"])  # "full" trains the backbone


def test_registered_names_resolve_through_file_and_directory_registries(pretrained, tmp_path,
                                                                       monkeypatch):
    with pytest.raises(ModelError, match="unknown pretrained model 'no-such-lm'") as error:
        resolve_model("no-such-lm")  # (hyena-glt-base itself falls back to the bundled model)
    assert str(tmp_path / "cache" / "hyena_glt" / "models") in str(error.value)
    written = register_model("hyena-glt-base", pretrained)
    assert written == tmp_path / "cache" / "hyena_glt" / "models" / "registry.json"
    assert resolve_model("hyena-glt-base") == pretrained.resolve()

    mapping = tmp_path / "models.yaml"
    mapping.write_text(f"my-lm: {pretrained}\n")
    monkeypatch.setenv("HYENA_GLT_MODEL_REGISTRY", str(mapping))
    assert resolve_model("my-lm") == pretrained
    assert set(registered_models()) == {"my-lm", "hyena-glt-base"}
    finetuner = FineTuner(pretrained_model="my-lm", task_type="sequence_classification", num_classes=3)
    assert finetuner.model.config.num_classes == 3 and finetuner.source == pretrained
    assert finetuner.tokenizer is not None

    monkeypatch.setenv("HYENA_GLT_MODEL_REGISTRY", str(pretrained.parent))  # a directory
    assert resolve_model("tiny-lm") == pretrained
    with pytest.raises(ModelError, match="not a model directory"):
        register_model("broken", tmp_path)
    with pytest.raises(ConfigurationError, match="model name"):
        register_model("no spaces", pretrained)


def test_head_only_and_gradual_unfreezing(pretrained, promoters, tmp_path):
    train, _ = promoters
    small = torch.utils.data.Subset(train, range(32))
    lm = load_file(str(pretrained / "model.safetensors"))
    head_only = FineTuner(pretrained, num_classes=2, strategy="head_only")
    model = head_only.finetune(small, num_epochs=1, output_dir=tmp_path / "head")
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, lm[f"backbone.{key}"]), key

    finetuner = FineTuner(pretrained, num_classes=2, strategy="gradual_unfreeze")
    units = backbone_units(finetuner.model.backbone)
    assert units[-1] is finetuner.model.backbone.final_norm
    seen = []

    def record(trainer, event):
        if event == "step_end" and trainer.state.batch == 1:
            seen.append([any(p.requires_grad for p in u.parameters()) for u in units])

    finetuner.finetune(small, num_epochs=3, output_dir=tmp_path / "gradual", callbacks=[record])
    n = len(units)
    assert seen == [[False] * n, [False] * (n - 1) + [True], [False] * (n - 2) + [True] * 2]
    with pytest.raises(ConfigurationError, match="strategy"):
        FineTuner(pretrained, strategy="lora")
    with pytest.raises(ConfigurationError, match="at least 2 classes"):
        FineTuner(pretrained, num_classes=1)


def test_early_stopping_keeps_the_best_model(pretrained, promoters, tmp_path):
    train, val = promoters
    finetuner = FineTuner(pretrained, num_classes=2, head_lr=1e-2)
    # Rank a higher loss as better: the loss falls after the first epoch, so the second
    # evaluation does not improve and patience 1 stops the run there.
    model = finetuner.finetune(train, val, num_epochs=5, output_dir=tmp_path,
                               greater_is_better=True, early_stopping_patience=1)
    trainer = finetuner.trainer
    evals = [r for r in trainer.get_metrics()["history"] if "eval_loss" in r]
    assert evals[1]["eval_loss"] < evals[0]["eval_loss"]
    assert len(evals) == 2 and trainer.state.epochs_completed == 2  # 3 epochs early
    assert trainer.state.best_step == evals[0]["step"] == 10
    assert trainer.state.best_metric == evals[0]["eval_loss"]
    best = load_file(str(tmp_path / "best" / "model.safetensors"))
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_cli_finetunes_a_variant_effect_head_on_held_out_brca1_variants(shared_data, pretrained,
                                                                        tmp_path):
    """Real BRCA1 SGE variants (LOF or not): ingest with a position-grouped split, fine-tune on
    the train part, and score the test part into test_metrics.json, whose AUROC is the one the
    saved model gives."""
    frame = pd.read_csv(shared_data / SGE).sample(400, random_state=0)
    frame.to_csv(tmp_path / "sge.csv", index=False)
    variants = tmp_path / "variants"
    assert main(["ingest", "vcf", "--reference", str(shared_data / BRCA1_REFERENCE), "--table",
                 str(tmp_path / "sge.csv"), "--chrom", "ref_brca1", "--pos-column",
                 "pos_in_ref_brca1", "--label-column", "label_lof", "--window", "64",
                 "--split", "0.8", "--seed", "0", "--out", str(variants)]) == 0
    out = tmp_path / "brca1_lof"
    assert main(["finetune", "--pretrained", str(pretrained), "--task-type", "variant_effect",
                 "--train", str(variants / "train"), "--test", str(variants / "test"),
                 "--out", str(out), "--epochs", "2", "--batch-size", "32", "--threads", "1",
                 "--set", "learning_rate=0.003"]) == 0
    metrics = json.loads((out / "test_metrics.json").read_text())
    test = VariantEffectDataset(variants / "test", max_length=None, padding=None)
    labels = test.labels
    assert metrics["eval_n_samples"] == len(test) == 400 - len(
        VariantEffectDataset(variants / "train", max_length=None, padding=None))
    assert 0 < labels.sum() < len(labels)  # both classes held out
    model = HyenaGLTForVariantEffect.from_pretrained(out).eval()
    assert model.config.task_type == "variant_effect" and model.config.num_classes == 2
    batch = collate_batch([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = model(input_ids=batch["alt_input_ids"], ref_input_ids=batch["ref_input_ids"],
                       variant_offset=batch["variant_offset"]).logits
    probability = logits.float().softmax(-1)[:, 1].numpy()
    assert metrics["eval_auroc"] == pytest.approx(roc_auc_score(labels, probability), abs=1e-6)


@pytest.fixture
def function_scores(shared_data, tmp_path) -> VariantEffectDataset:
    """60 BRCA1 SGE variants labelled with their continuous function score (16-nt windows)."""
    from hyena_glt.ingest.vcf import ingest_variants, variants_from_table

    variants = variants_from_table(shared_data / SGE, chrom="ref_brca1",
                                   pos_column="pos_in_ref_brca1", label_column="function_score")
    ingest_variants(list(variants)[:60], shared_data / BRCA1_REFERENCE, tmp_path / "scores",
                    window=16)
    return VariantEffectDataset(tmp_path / "scores", max_length=None, padding=None)


def test_variant_effect_class_head_refuses_continuous_scores(function_scores, pretrained,
                                                             tmp_path):
    assert function_scores.num_classes is None and function_scores.labels.dtype == np.float32
    finetuner = FineTuner(pretrained, task_type="variant_effect", num_classes=2)
    with pytest.raises(ConfigurationError, match="continuous.*use num_classes=1"):
        finetuner.finetune(function_scores, num_epochs=1, output_dir=tmp_path / "run")


def test_variant_effect_score_head_regresses_function_scores(function_scores, pretrained,
                                                            tmp_path):
    finetuner = FineTuner(pretrained, task_type="variant_effect", num_classes=1, batch_size=20,
                          backbone_lr=3e-3)
    model = finetuner.finetune(function_scores, num_epochs=4, output_dir=tmp_path / "run")
    assert isinstance(model, HyenaGLTForVariantEffect) and model.config.num_classes == 1
    metrics = finetuner.trainer.evaluate(function_scores)
    assert {"eval_mse", "eval_spearman_rho", "eval_pearson_r"} <= set(metrics)
    # Better than the untrained head's output of about 0 (scores centre near -0.3).
    assert metrics["eval_mse"] < float(np.mean(function_scores.labels ** 2))


def test_a_protein_task_starts_from_random_weights_without_a_base_model():
    """The fix the DNA base's refusal names: no pretrained model, a protein tokenizer."""
    from hyena_glt.data import ProteinTokenizer

    finetuner = FineTuner(pretrained_model=None, task_type="protein_function", num_classes=5,
                          d_model=16, n_layers=2)
    assert finetuner.source is None and isinstance(finetuner.tokenizer, ProteinTokenizer)
    ids = torch.tensor([finetuner.tokenizer.encode("MKTLLLTLLCLVAAYLA")])
    assert finetuner.model(ids).logits.shape == (1, 5)


def test_every_new_head_weight_trains_at_the_head_learning_rate(pretrained, tmp_path):
    finetuner = FineTuner(pretrained, task_type="token_classification", head_lr=1e-2,
                          backbone_lr=1e-4, output_dir=tmp_path)
    assert finetuner.model.kmer_path is not None  # per-base: the k-mer path is part of the head
    table = tmp_path / "windows.csv"
    pd.DataFrame({"sequence": ["ACGTACGTAC" * 4] * 4, "labels": ["0011" * 10] * 4}).to_csv(
        table, index=False)
    windows = GenomeAnnotationDataset(table, max_length=None, padding=None)
    finetuner.finetune(windows, num_epochs=1, show_progress=False)
    rate = {id(p): group["initial_lr"] for group in finetuner.trainer.optimizer.param_groups
            for p in group["params"]}  # the peak rate (the schedule has moved "lr" since)
    named = dict(finetuner.model.named_parameters())
    assert {rate[id(p)] for n, p in named.items() if n.startswith("backbone.")} == {1e-4}
    assert {rate[id(p)] for n, p in named.items() if not n.startswith("backbone.")} == {1e-2}
