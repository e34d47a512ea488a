"""Model directories of every kind (fine-tuned, quantized, pruned, ONNX export) in the benchmark
and in ``hyena-glt evaluate``; the API.md benchmark example; per-base evaluation of annotation
shards. Real data: the bundled promoter subset and the Arabidopsis chloroplast genome."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    matthews_corrcoef,
    mean_squared_error,
    roc_auc_score,
)

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import DNATokenizer, GenomicDataset
from hyena_glt.data.datasets import GenomeAnnotationDataset
from hyena_glt.data.shards import read_table
from hyena_glt.errors import ConfigurationError, ModelError
from hyena_glt.evaluation import (
    BenchmarkTask,
    KmerLogisticRegression,
    ModelBenchmark,
    OnnxSequenceClassifier,
    TorchSequenceClassifier,
    load_classifier,
    read_labelled_sequences,
)
from hyena_glt.evaluation.models import stored_size_bytes
from hyena_glt.model import (
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
PROMOTERS = RESOURCES / "promoters" / "human_nontata_promoters.test_subset2000.csv.gz"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(**changes) -> HyenaGLTConfig:
    return HyenaGLTConfig(**{"vocab_size": 64, "d_model": 16, "n_layers": 2, "num_heads": 2,
                             "sequence_length": 256, "filter_order": 8, "dropout": 0.0,
                             "attention_layers": (1,), "max_patch_size": 6,
                             "merge_ratio": 0.5, **changes})


def tiny_classifier(seed: int = 0) -> HyenaGLTForSequenceClassification:
    torch.manual_seed(seed)
    return HyenaGLTForSequenceClassification(_config())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Promoter shards split 80/20, a fine-tuned-style model directory and its int8/pruned
    versions written by the compress commands."""
    root = tmp_path_factory.mktemp("models")
    assert main(["ingest", "table", str(PROMOTERS), "--alphabet", "dna", "--split", "0.8",
                 "--out", str(root / "promoters")]) == 0
    tiny_classifier().save_pretrained(root / "finetuned", tokenizer=DNATokenizer())
    pd.read_csv(PROMOTERS).iloc[:64].to_csv(root / "val.csv", index=False)  # for the reports
    for command, extra in (("quantize", []), ("prune", ["--sparsity", "0.5"])):
        assert main([command, str(root / "finetuned"), "--val", str(root / "val.csv"),
                     "--out", str(root / command), *extra]) == 0
    return root


def test_shards_decode_to_the_source_sequences(workdir):
    table = pd.read_csv(PROMOTERS)
    test = read_labelled_sequences(workdir / "promoters/test")
    ids = read_table(workdir / "promoters/test", columns=["id"]).column("id").to_pylist()
    rows = [int(i.rsplit(":", 1)[1]) for i in ids]
    assert test.sequences == [s.upper() for s in table["sequence"].iloc[rows].tolist()]
    np.testing.assert_array_equal(test.labels, table["label"].iloc[rows].to_numpy())
    train = read_labelled_sequences(workdir / "promoters/train")
    assert len(train.sequences) + len(test.sequences) == len(table)
    assert set(train.sequences).isdisjoint(test.sequences)


def test_benchmark_runs_float_quantized_and_pruned_directories(workdir, tmp_path):
    out = tmp_path / "bench"
    assert main(["benchmark", "--name", "promoters", "--train", str(workdir / "promoters/train"),
                 "--test", str(workdir / "promoters/test"), "--baselines", "kmer",
                 "--model", f"finetuned={workdir / 'finetuned'}",
                 "--model", f"int8={workdir / 'quantize'}",
                 "--model", f"pruned={workdir / 'prune'}", "--max-rows", "120",
                 "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    costs = results.groupby("model").first()
    # Same float architecture: as many parameters, and the same bytes when stored densely.
    assert costs.loc["pruned", "n_parameters"] == costs.loc["finetuned", "n_parameters"]
    assert costs.loc["pruned", "size_bytes"] == costs.loc["finetuned", "size_bytes"]
    model = HyenaGLTForSequenceClassification.from_pretrained(workdir / "finetuned")
    assert costs.loc["finetuned", "size_bytes"] == stored_size_bytes(model.state_dict())
    # int8 weights: the same count of weights in well under the float bytes.
    assert costs.loc["int8", "n_parameters"] == costs.loc["finetuned", "n_parameters"]
    assert costs.loc["int8", "size_bytes"] < 0.6 * costs.loc["finetuned", "size_bytes"]
    assert (costs[["latency_ms", "throughput_seq_per_s"]] > 0).all().all()
    # Every number is that of the directory's own model on the same test rows.
    task = BenchmarkTask.from_split(workdir / "promoters/train", workdir / "promoters/test",
                                    max_rows=120)
    for name, directory in (("int8", "quantize"), ("pruned", "prune")):
        # Same batches as the benchmark's (int8 activations are scaled per batch).
        probs = load_classifier(workdir / directory, batch_size=32).predict_proba(
            task.test_sequences)
        row = results[(results["model"] == name) & (results["metric"] == "auroc")]
        assert row["value"].item() == pytest.approx(roc_auc_score(task.test_labels,
                                                                  probs[:, 1]))
    with pytest.raises(ModelError, match="not a model directory"):
        load_classifier(workdir / "promoters")


def test_api_example_benchmark_with_genomic_datasets():
    """API.md's evaluation example, as written: models=[...], datasets=[test_dataset]."""
    tokenizer = DNATokenizer(vocab_size=64)
    table = pd.read_csv(PROMOTERS).sample(60, random_state=0)
    sequences, labels = table["sequence"].tolist(), table["label"].tolist()
    test_dataset = GenomicDataset(sequences=sequences, labels=labels, tokenizer=tokenizer,
                                  max_length=1024)
    model1, model2, model3 = (tiny_classifier(seed) for seed in range(3))
    benchmark = ModelBenchmark(
        models=[model1, model2, model3],
        datasets=[test_dataset],
        metrics=["accuracy", "f1", "auc"],
    )
    benchmark_results = benchmark.run()
    assert len(benchmark_results) == 9
    names = list(dict.fromkeys(benchmark_results["model"]))
    assert names == ["HyenaGLTForSequenceClassification", "HyenaGLTForSequenceClassification_1",
                     "HyenaGLTForSequenceClassification_2"]
    with torch.no_grad():
        batch = tokenizer.batch_encode(sequences)
        logits = model2.eval()(batch["input_ids"], batch["attention_mask"]).logits
    row = benchmark_results[(benchmark_results["model"] == names[1])
                            & (benchmark_results["metric"] == "accuracy")]
    assert row["value"].item() == pytest.approx(accuracy_score(labels, logits.argmax(-1)))
    # A baseline needs a training part: a test-only dataset is refused, a (train, test) pair
    # of datasets works.
    with pytest.raises(ConfigurationError, match="no training part"):
        ModelBenchmark([KmerLogisticRegression()], [test_dataset]).run()
    rest = pd.read_csv(PROMOTERS).drop(table.index).sample(200, random_state=0)
    train = GenomicDataset(sequences=rest["sequence"].tolist(), labels=rest["label"].tolist(),
                           tokenizer=tokenizer, max_length=1024)
    pair = ModelBenchmark({"kmer": KmerLogisticRegression()}, [(train, test_dataset)]).run()
    assert set(pair["metric"]) == {"accuracy", "f1_macro", "auroc"}


def test_evaluate_writes_a_tidy_table_or_json(workdir, tmp_path):
    out = tmp_path / "int8.parquet"
    assert main(["evaluate", "--model", str(workdir / "quantize"), "--data",
                 str(workdir / "promoters/test"), "--name", "int8", "--dataset", "promoters",
                 "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert list(table.columns) == ["model", "dataset", "metric", "value"]
    assert set(table["model"]) == {"int8"} and set(table["dataset"]) == {"promoters"}
    data = read_labelled_sequences(workdir / "promoters/test")
    probs = load_classifier(workdir / "quantize", batch_size=32).predict_proba(data.sequences)
    values = table.set_index("metric")["value"]
    assert values["accuracy"] == pytest.approx(accuracy_score(data.labels, probs.argmax(1)))
    assert values["n_samples"] == len(data.labels)
    # A CSV table and JSON output: the same metrics of the same rows.
    rows = read_table(workdir / "promoters/test", columns=["id"]).column("id").to_pylist()[::8]
    source = pd.read_csv(PROMOTERS).iloc[[int(i.rsplit(":", 1)[1]) for i in rows]]
    source.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["evaluate", "--model", str(workdir / "quantize"), "--data",
                 str(tmp_path / "rows.csv"), "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    probs = load_classifier(workdir / "quantize", batch_size=32).predict_proba(
        data.sequences[::8])
    assert metrics["accuracy"] == pytest.approx(accuracy_score(data.labels[::8],
                                                               probs.argmax(1)))


def test_evaluate_annotation_shards_per_base(tmp_path):
    genome = RESOURCES / "genomes" / "NC_000932.1.fa.gz"
    gff = RESOURCES / "annotation" / "NC_000932.1.gff3.gz"
    shards = tmp_path / "cds"
    assert main(["ingest", "annotation", str(genome), "--annotation", str(gff), "--window",
                 "256", "--split", "0.92", "--out", str(shards)]) == 0
    torch.manual_seed(1)
    model = HyenaGLTForTokenClassification(_config(num_classes=2))
    model.save_pretrained(tmp_path / "annotator")
    out = tmp_path / "annotation.csv"
    assert main(["evaluate", "--model", str(tmp_path / "annotator"), "--data",
                 str(shards / "test"), "--name", "annotator", "--dataset", "cds",
                 "--batch-size", "16", "--out", str(out)]) == 0
    values = pd.read_csv(out).set_index("metric")["value"]
    dataset = GenomeAnnotationDataset(shards / "test", max_length=None, padding=None)
    with torch.no_grad():
        ids = torch.stack([dataset[i]["input_ids"] for i in range(len(dataset))])
        labels = torch.stack([dataset[i]["labels"] for i in range(len(dataset))])
        predicted = model.eval()(ids, torch.ones_like(ids)).logits.argmax(-1)
    target, predicted = labels.flatten().numpy(), predicted.flatten().numpy()
    assert values["n_bases"] == len(target) == 256 * len(dataset)
    assert values["accuracy"] == pytest.approx(accuracy_score(target, predicted))
    assert values["f1_macro"] == pytest.approx(f1_score(target, predicted, average="macro"))
    assert values["mcc"] == pytest.approx(matthews_corrcoef(target, predicted), abs=1e-12)
    assert "f1/CDS" in values.index
    # A sequence classifier is not a per-base model.
    tiny_classifier().save_pretrained(tmp_path / "seq")
    assert main(["evaluate", "--model", str(tmp_path / "seq"), "--data", str(shards / "test"),
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_evaluate_regression_table(tmp_path):
    """Real-valued labels (the GC fraction of real promoter sequences) -> regression metrics."""
    table = pd.read_csv(PROMOTERS).sample(40, random_state=1)
    sequences = table["sequence"].str.upper().tolist()
    gc = [(s.count("G") + s.count("C")) / len(s) for s in sequences]
    pd.DataFrame({"sequence": sequences, "label": gc}).to_csv(tmp_path / "gc.csv", index=False)
    torch.manual_seed(2)
    model = HyenaGLTForRegression(_config())
    model.save_pretrained(tmp_path / "regressor")
    out = tmp_path / "gc.parquet"
    assert main(["evaluate", "--model", str(tmp_path / "regressor"), "--data",
                 str(tmp_path / "gc.csv"), "--dataset", "gc", "--out", str(out)]) == 0
    values = pd.read_parquet(out).set_index("metric")["value"]
    with torch.no_grad():
        batch = DNATokenizer().batch_encode(sequences)
        predicted = model.eval()(batch["input_ids"], batch["attention_mask"]).logits[:, 0]
    assert values["mse"] == pytest.approx(mean_squared_error(gc, predicted.numpy()), rel=1e-5)
    assert values["n_samples"] == 40


@pytest.mark.slow
def test_onnx_export_directory_in_benchmark_and_evaluate(workdir, tmp_path):
    """A real ``hyena-glt export`` directory runs in ONNX Runtime at its fixed length: shorter
    inputs padded, longer ones truncated, matching PyTorch; sizes are of the graph's weights."""
    export = tmp_path / "onnx"
    assert main(["export", str(workdir / "finetuned"), "--val", str(workdir / "val.csv"),
                 "--length", "256", "--out", str(export)]) == 0
    assert {p.name for p in export.iterdir()} == {"model.onnx", "compression_report.json"}
    onnx_model = load_classifier(export)
    assert isinstance(onnx_model, OnnxSequenceClassifier)
    torch_model = load_classifier(workdir / "finetuned")
    assert isinstance(torch_model, TorchSequenceClassifier)
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), n)) for n in (40, 251, 256, 300)]
    np.testing.assert_allclose(onnx_model.predict_proba(sequences),
                               torch_model.predict_proba(sequences), atol=1e-4)
    out = tmp_path / "bench"
    assert main(["benchmark", "--name", "promoters", "--train", str(workdir / "promoters/train"),
                 "--test", str(workdir / "promoters/test"), "--baselines", "none",
                 "--model", f"finetuned={workdir / 'finetuned'}", "--model", f"onnx={export}",
                 "--max-rows", "80", "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    values = results.pivot_table(index="model", columns="metric", values="value")
    np.testing.assert_allclose(values.loc["onnx"], values.loc["finetuned"], atol=1e-3)
    costs = results.groupby("model").first()
    assert costs.loc["onnx", "size_bytes"] > 0 and costs.loc["onnx", "latency_ms"] > 0
    assert costs.loc["onnx", "n_parameters"] == sum(
        np.size(v) for v in onnx_model.parameters().values())
    assert main(["evaluate", "--model", str(export), "--data", str(workdir / "promoters/test"),
                 "--name", "onnx", "--out", str(tmp_path / "onnx.csv")]) == 0
    assert set(pd.read_csv(tmp_path / "onnx.csv")["model"]) == {"onnx"}
