"""Baselines and ModelBenchmark on the real human_nontata_promoters test file (a subsample)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.preprocessing import normalize

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.errors import ConfigurationError, DataError, ModelError
from hyena_glt.evaluation import (
    BenchmarkTask,
    CNNBaseline,
    GenomicBenchmarksCNN,
    KmerLogisticRegression,
    ModelBenchmark,
    save_results,
)
from hyena_glt.model import HyenaGLTForSequenceClassification

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def promoters_path(shared_data):
    return shared_data / "genomic_benchmarks" / "human_nontata_promoters" / "test.csv.gz"


@pytest.fixture(scope="module")
def task(promoters_path):
    return BenchmarkTask.from_table(promoters_path, max_rows=200)


def tiny_classifier() -> HyenaGLTForSequenceClassification:
    torch.manual_seed(0)
    return HyenaGLTForSequenceClassification(HyenaGLTConfig(
        vocab_size=64, d_model=16, n_layers=2, num_heads=2, sequence_length=256,
        filter_order=8, dropout=0.0, attention_layers=(1,), max_patch_size=6, merge_ratio=0.5))


def test_task_split_is_stratified_and_reproducible(task, promoters_path):
    assert len(task.train_sequences) == 140 and len(task.test_sequences) == 60
    assert task.label_names == ["0", "1"]
    assert abs(task.train_labels.mean() - task.test_labels.mean()) < 0.05
    again = BenchmarkTask.from_table(promoters_path, max_rows=200)
    assert again.test_sequences == task.test_sequences
    assert set(task.train_sequences).isdisjoint(task.test_sequences)


def test_kmer_baseline_matches_plain_scikit_learn(task):
    baseline = KmerLogisticRegression().fit(task.train_sequences, task.train_labels)
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 6))
    train = normalize(vectorizer.fit_transform(task.train_sequences))
    reference = LogisticRegression(max_iter=3000).fit(train, task.train_labels)
    expected = reference.predict_proba(normalize(vectorizer.transform(task.test_sequences)))
    np.testing.assert_allclose(baseline.predict_proba(task.test_sequences), expected)
    with pytest.raises(DataError, match="single class"):
        KmerLogisticRegression().fit(["ACGT", "ACGA"], [1, 1])


def test_cnn_shapes_and_seeded_training(task):
    net = GenomicBenchmarksCNN(vocab_size=22, length=251, num_classes=3)
    assert net(torch.randint(0, 22, (4, 251))).shape == (4, 3)
    with pytest.raises(ModelError, match="too short"):
        GenomicBenchmarksCNN(vocab_size=22, length=20)
    first = CNNBaseline(epochs=1, seed=3).fit(task.train_sequences, task.train_labels)
    probs = first.predict_proba(task.test_sequences)
    assert probs.shape == (60, 2)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    second = CNNBaseline(epochs=1, seed=3).fit(task.train_sequences, task.train_labels)
    np.testing.assert_allclose(second.predict_proba(task.test_sequences), probs, atol=1e-6)


def test_benchmark_table_lists_model_and_baselines(task, tmp_path):
    model = tiny_classifier()
    kmer = KmerLogisticRegression()
    benchmark = ModelBenchmark({"hyena": model, "kmer": kmer, "cnn": CNNBaseline(epochs=1)},
                               [task], metrics=["accuracy", "f1", "auc"], latency_repeats=1)
    table = benchmark.run()
    assert list(table.columns) == ["model", "dataset", "metric", "value", "n_parameters",
                                   "size_bytes", "latency_ms", "throughput_seq_per_s",
                                   "latency_ms_iqr", "batch_size", "threads", "machine"]
    assert len(table) == 9 and set(table["model"]) == {"hyena", "kmer", "cnn"}
    assert set(table["metric"]) == {"accuracy", "f1_macro", "auroc"}
    assert table["value"].between(0, 1).all()
    assert (table[["latency_ms", "throughput_seq_per_s"]] > 0).all().all()
    # Table values agree with the stored predictions.
    probs, targets = benchmark.predictions[("kmer", task.name)]
    kmer_rows = table[table["model"] == "kmer"].set_index("metric")["value"]
    assert kmer_rows["accuracy"] == pytest.approx(accuracy_score(targets, probs.argmax(1)))
    assert kmer_rows["auroc"] == pytest.approx(roc_auc_score(targets, probs[:, 1]))
    # Parameters and size measured the same way: the safetensors bytes of the parameters.
    kmer_cost = table[table["model"] == "kmer"].iloc[0]
    coef, intercept = kmer.pipeline[-1].coef_, kmer.pipeline[-1].intercept_
    assert kmer_cost["n_parameters"] == coef.size + intercept.size
    assert kmer_cost["size_bytes"] == len(safetensors.numpy.save(
        {"coef": coef, "intercept": intercept}))
    hyena_cost = table[table["model"] == "hyena"].iloc[0]
    assert hyena_cost["n_parameters"] == sum(v.numel() for v in model.state_dict().values())
    predictions = benchmark.predictions_table()
    assert list(predictions.columns) == ["model", "dataset", "task_type", "unit", "position",
                                         "target", "prob_0", "prob_1", "score"]
    np.testing.assert_allclose(predictions["score"], predictions["prob_1"])
    assert len(predictions) == 3 * 60
    for suffix in (".parquet", ".csv"):
        path = save_results(table, tmp_path / f"results{suffix}")
        back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        np.testing.assert_allclose(back["value"], table["value"])


def test_timings_are_interleaved_and_name_the_machine(task):
    """One batch, the same for every model, timed in rotating rounds: each model's median
    and spread come from the same stretch of wall time."""
    calls: list[str] = []

    class Recorder(KmerLogisticRegression):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.label = name

        def predict_proba(self, sequences):
            calls.append((self.label, len(sequences)))
            return super().predict_proba(sequences)

    benchmark = ModelBenchmark({"a": Recorder("a"), "b": Recorder("b")}, [task],
                               batch_size=8, latency_repeats=4)
    table = benchmark.run()
    timed = [name for name, size in calls if size == 8]
    assert timed == ["a", "b"] + ["a", "b", "b", "a"] * 2  # warm-up, then rotating rounds
    costs = table.groupby("model").first()
    assert (costs["batch_size"] == 8).all() and (costs["latency_ms_iqr"] >= 0).all()
    assert costs["machine"].nunique() == 1 and "CPUs" in costs["machine"].iloc[0]
    assert costs["throughput_seq_per_s"].to_numpy() == pytest.approx(
        8000 / costs["latency_ms"].to_numpy())


def test_two_unnamed_datasets_keep_their_rows_apart(task):
    first = BenchmarkTask("dataset", task.train_sequences, task.train_labels,
                          task.test_sequences, task.test_labels)
    second = BenchmarkTask("dataset", task.train_sequences, task.train_labels,
                           task.test_sequences[:20], task.test_labels[:20])
    table = ModelBenchmark([KmerLogisticRegression()], [first, second],
                           latency_repeats=1).run()
    assert set(table["dataset"]) == {"dataset_0", "dataset_1"}
    assert not table.duplicated(["model", "dataset", "metric"]).any()


def test_unknown_metric_is_a_clear_error(task):
    with pytest.raises(ConfigurationError, match="unknown metric"):
        ModelBenchmark([KmerLogisticRegression()], [task], metrics=["accuracy", "nope"]).run()


def test_cli_benchmark_on_presplit_shards_then_report(promoters_path, tmp_path):
    """Baselines are fitted on the train part only and every model is scored on the test part."""
    assert main(["ingest", "table", str(promoters_path), "--alphabet", "dna", "--split", "0.7",
                 "--out", str(tmp_path / "shards")]) == 0
    model_dir = tiny_classifier().save_pretrained(tmp_path / "tiny")
    out = tmp_path / "bench"
    assert main(["benchmark", "--name", "promoters", "--train", str(tmp_path / "shards/train"),
                 "--test", str(tmp_path / "shards/test"), "--model", f"tiny={model_dir}",
                 "--max-rows", "150", "--baselines", "kmer,cnn", "--cnn-epochs", "1",
                 "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["model"]) == {"tiny", "kmer_baseline", "cnn_baseline"}
    assert set(results["dataset"]) == {"promoters"}
    assert len(pd.read_csv(out / "results.csv")) == len(results) == 9
    # The k-mer baseline's numbers are those of the same fit on the same parts.
    task = BenchmarkTask.from_split(tmp_path / "shards/train", tmp_path / "shards/test",
                                    max_rows=150)
    kmer = KmerLogisticRegression().fit(task.train_sequences, task.train_labels)
    expected = accuracy_score(task.test_labels, kmer.predict_proba(task.test_sequences).argmax(1))
    kmer_row = results[(results["model"] == "kmer_baseline") & (results["metric"] == "accuracy")]
    assert kmer_row["value"].item() == pytest.approx(expected)
    predictions = pd.read_parquet(out / "predictions.parquet")
    for _, rows in predictions.groupby("model"):
        np.testing.assert_array_equal(rows["target"], task.test_labels)
    report = tmp_path / "report.html"
    assert main(["report", "--results", str(out / "results.parquet"), "--predictions",
                 str(out / "predictions.parquet"), "--data-file", str(promoters_path),
                 "--config", str(model_dir / "config.json"), "--out", str(report)]) == 0
    page = html.unescape(report.read_text())
    assert "kmer_baseline" in page and "ROC" in page and '"d_model": 16' in page
    scorecard = page.split('id="scorecard"')[1].split("</table>")[0]
    assert "<td class=\"text\">tiny</td>" in scorecard  # the best (only) Hyena-GLT model
    assert main(["benchmark", "--name", "p", "--model", "no-equals-sign", "--train",
                 str(tmp_path / "shards/train"), "--test", str(tmp_path / "shards/test"),
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_cli_benchmark_fits_the_cnn_with_the_task_alphabet(shared_data, tmp_path):
    """A protein task's CNN baseline reads residues (it used to insist on DNA letters)."""
    table = shared_data / "protein" / "multiloc_localization" / "multiloc.csv.gz"
    assert main(["ingest", "table", str(table), "--alphabet", "protein", "--split", "0.7",
                 "--out", str(tmp_path / "shards")]) == 0
    out = tmp_path / "bench"
    assert main(["benchmark", "--name", "multiloc", "--train", str(tmp_path / "shards/train"),
                 "--test", str(tmp_path / "shards/test"), "--max-rows", "150",
                 "--baselines", "cnn", "--cnn-epochs", "1", "--out", str(out)]) == 0
    results = pd.read_parquet(out / "results.parquet")
    assert set(results["model"]) == {"cnn_baseline"}
    assert results.loc[results["metric"] == "accuracy", "value"].between(0, 1).all()


def test_regression_task_beside_the_kmer_ridge_baseline(promoters_path, tmp_path):
    """Real-valued labels (each promoter's GC fraction): a torch regressor and the k-mer ridge
    baseline get regression metrics, timings and value predictions the report can score."""
    from hyena_glt.evaluation import PerformanceAnalyzer
    from hyena_glt.evaluation.baselines import KmerRidgeRegression
    from hyena_glt.evaluation.bootstrap import BootstrapSettings
    from hyena_glt.model import HyenaGLTForRegression

    table = pd.read_csv(promoters_path).sample(120, random_state=0)
    sequences = table["sequence"].str.upper().tolist()
    gc = [(s.count("G") + s.count("C")) / len(s) for s in sequences]
    pd.DataFrame({"sequence": sequences, "label": gc}).to_csv(tmp_path / "gc.csv", index=False)
    torch.manual_seed(0)
    regressor = HyenaGLTForRegression(tiny_classifier().config.replace(
        task_type="regression", num_classes=1))
    benchmark = ModelBenchmark({"hyena": regressor, "kmer_baseline": KmerRidgeRegression()},
                               [tmp_path / "gc.csv"], latency_repeats=2)
    results = benchmark.run()
    assert set(results["metric"]) == {"mse", "r2", "spearman_rho"}
    values = results.set_index(["model", "metric"])["value"]
    assert values["kmer_baseline", "spearman_rho"] > 0.9  # k-mer counts carry the GC content
    assert (results["latency_ms"] > 0).all()
    predictions = benchmark.predictions_table()
    assert "prediction" in predictions and set(predictions["task_type"]) == {"regression"}
    page = html.unescape(PerformanceAnalyzer(bootstrap=BootstrapSettings(50)).generate_report(
        results, tmp_path / "r.html", predictions=predictions).read_text())
    scorecard = page.split('id="scorecard"')[1].split("</table>")[0]
    assert "spearman_rho" in scorecard and "kmer_baseline" in scorecard


def test_per_base_task_beside_the_per_base_baselines(tmp_path):
    """Annotation windows: a torch token classifier and the k-mer/ORF and CNN baselines,
    scored over the same labelled bases, timed alike, predictions with windows as units."""
    from hyena_glt.cli import main
    from hyena_glt.evaluation.token_baselines import (
        OrfKmerLogisticRegression,
        PerBaseCNNBaseline,
    )
    from hyena_glt.model import HyenaGLTForTokenClassification

    resources = Path(__file__).resolve().parents[1] / "resources"
    shards = tmp_path / "cds"
    assert main(["ingest", "annotation", str(resources / "genomes" / "NC_000932.1.fa.gz"),
                 "--annotation", str(resources / "annotation" / "NC_000932.1.gff3.gz"),
                 "--window", "256", "--split", "0.9", "--out", str(shards)]) == 0
    torch.manual_seed(0)
    annotator = HyenaGLTForTokenClassification(tiny_classifier().config.replace(
        task_type="token_classification", num_classes=2))
    benchmark = ModelBenchmark({"hyena": annotator, "orf_kmer_baseline":
                                OrfKmerLogisticRegression(),
                                "cnn_baseline": PerBaseCNNBaseline(epochs=1)},
                               [(shards / "train", shards / "test")], batch_size=4,
                               latency_repeats=2)
    results = benchmark.run()
    values = results.set_index(["model", "metric"])["value"]
    assert set(results["metric"]) == {"accuracy", "f1_macro", "auroc"}
    assert values["orf_kmer_baseline", "auroc"] > 0.8
    assert set(results["batch_size"]) == {4} and (results["latency_ms"] > 0).all()
    predictions = benchmark.predictions_table()
    sizes = predictions.groupby("model").size()
    assert sizes.nunique() == 1 and set(predictions["task_type"]) == {"token_classification"}
    kmer = predictions[predictions["model"] == "orf_kmer_baseline"]
    assert values["orf_kmer_baseline", "auroc"] == pytest.approx(
        roc_auc_score(kmer["target"], kmer["score"]))
    assert kmer["unit"].nunique() > 10 and kmer["position"].max() < 256
