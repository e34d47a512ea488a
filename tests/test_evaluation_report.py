"""The benchmark report: scorecard with intervals and verdicts for every task type, figures,
one timings table, provenance, named errors for bad tables, and a real render in headless
Chromium with the network cut off (skipped when chromium is absent)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyena_glt import __version__
from hyena_glt.errors import DataError
from hyena_glt.evaluation import PerformanceAnalyzer
from hyena_glt.evaluation.bootstrap import BootstrapSettings, paired_bootstrap
from hyena_glt.evaluation.predictions import predictions_frame
from hyena_glt.io import sha256sum

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SETTINGS = BootstrapSettings(n_resamples=200, seed=0)
TASKS = ("promoters", "chloroplast_cds", "brca1_lof")


class _Page(HTMLParser):
    """Start tags, attributes that could fetch something, ids, and scorecard rows."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.links: list[str] = []
        self.ids: list[str] = []
        self.rows: list[list[str]] = []
        self._in_scorecard = self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        attrs = dict(attrs)
        for name in ("src", "href", "xlink:href", "srcset"):
            if name in attrs and not str(attrs[name]).startswith("#"):
                self.links.append(attrs[name])
        if "id" in attrs:
            self.ids.append(attrs["id"])
            self._in_scorecard = self._in_scorecard or attrs["id"] == "scorecard"
        if self._in_scorecard and tag == "tr":
            self.rows.append([])
        self._in_cell = self._in_scorecard and tag == "td"

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_scorecard = False
        self._in_cell = self._in_cell and tag != "td"

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1].append(data.strip())


def _tables(rng=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and predictions of the example's three task types (synthetic scores)."""
    rng = rng or np.random.default_rng(0)
    frames, results = [], []
    target = rng.integers(0, 2, 300)
    for model, signal in (("finetuned", 0.5), ("quantized", 0.45), ("kmer_baseline", 0.2),
                          ("cnn_baseline", 0.1)):
        p = np.clip(signal * target + rng.uniform(0, 1 - signal, 300), 0, 1)
        frames.append(predictions_frame(model, "promoters", "sequence_classification", target,
                                        np.stack([1 - p, p], 1), np.arange(300)))
        results.append({"model": model, "dataset": "promoters", "metric": "auroc", "value": 0.8,
                        "n_parameters": 1000, "size_bytes": 1500 if model == "quantized"
                        else 4000, "latency_ms": 10.0, "throughput_seq_per_s": 3200.0,
                        "latency_ms_iqr": 0.5, "batch_size": 32, "threads": 2,
                        "machine": "Test CPU, 2 logical CPUs"})
    bases = (np.arange(12 * 256) // 90) % 2
    for model, signal in (("finetuned", 0.1), ("orf_kmer_baseline", 0.6), ("cnn_baseline", 0.4)):
        p = np.clip(signal * bases + rng.uniform(0, 1 - signal, len(bases)), 0, 1)
        frames.append(predictions_frame(model, "chloroplast_cds", "token_classification", bases,
                                        p, np.arange(len(bases)) // 256,
                                        5000 + np.arange(len(bases))))
        results.append({"model": model, "dataset": "chloroplast_cds", "metric": "auroc",
                        "value": 0.7})
    labels, positions = rng.integers(0, 2, 200), np.sort(rng.integers(0, 8000, 200))
    for model, score in (("finetuned", np.clip(0.3 * labels + rng.uniform(0, 0.7, 200), 0, 1)),
                         ("zero_shot_lm", 4 * labels + rng.normal(0, 4, 200)),
                         ("context_baseline", np.clip(0.3 * labels + rng.uniform(0, .7, 200),
                                                      0, 1))):
        frames.append(predictions_frame(model, "brca1_lof", "variant_effect", labels, score,
                                        positions // 100, positions))
        results.append({"model": model, "dataset": "brca1_lof", "metric": "auroc",
                        "value": 0.6})
    return pd.DataFrame(results), pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("report")
    results, predictions = _tables()
    log = tmp / "finetuned" / "promoters" / "metrics.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps({"step": s, "stage": "512" if s < 6 else "1024",
                                       "loss": 1 / s, "eval_loss": 1.2 / s,
                                       "eval_n_tokens": 10_000, "eval_accuracy": 0.5 + s / 100})
                           + "\n" for s in range(1, 11)))
    jobs = tmp / "benchmarks" / "finetune"
    jobs.mkdir(parents=True)
    (jobs / "promoters.tsv").write_text("s\th:m:s\tmax_rss\n123.4\t0:02:03\t2048.5\n")
    data_file = shared_data / "genomic_benchmarks" / "human_nontata_promoters" / "test.csv.gz"
    path = PerformanceAnalyzer("Example report", SETTINGS).generate_report(
        results, tmp / "report.html", predictions=predictions, training_logs=[log],
        config={"seed": 0, "evaluate": {"cnn_epochs": 5}}, data_files=[data_file],
        job_benchmarks=tmp / "benchmarks")
    return path, path.read_text(), predictions, data_file


def test_scorecard_has_a_row_with_intervals_and_a_verdict_per_task(report):
    _, page, predictions, _ = report
    parsed = _Page()
    parsed.feed(page)
    rows = {row[0]: row for row in parsed.rows if row}
    assert set(rows) == set(TASKS)
    interval = re.compile(r"^-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\]$")
    for row in rows.values():
        (_, _, _, primary, model, model_value, baseline, baseline_value, delta, verdict) = row
        assert primary == "auroc" and interval.match(model_value), row
        assert interval.match(baseline_value) and baseline.endswith("_baseline")
        assert not model.endswith("_baseline") and re.match(r"^[+-]\d\.\d{3} \[", delta)
        assert verdict in ("better", "worse", "no significant difference")
    assert rows["promoters"][:5] == ["promoters", "sequence_classification", "300", "auroc",
                                     "finetuned"]
    assert rows["chloroplast_cds"][2] == "3,072 (12 windows)"  # bases in whole windows
    assert rows["chloroplast_cds"][6] == "orf_kmer_baseline"
    assert rows["chloroplast_cds"][9] == "worse" and rows["promoters"][9] == "better"
    # The verdict's interval is the paired bootstrap of the same two models.
    part = predictions[predictions["dataset"] == "promoters"]
    a, b = (part[part["model"] == m] for m in ("finetuned", "kmer_baseline"))
    delta = paired_bootstrap("auroc", a["target"].to_numpy(), a["score"].to_numpy(),
                             b["score"].to_numpy(), a["unit"].to_numpy(), SETTINGS)
    assert rows["promoters"][8] == f"{delta.delta:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]"
    assert "200 resamples, seed 0" in page


def test_every_task_has_its_figures_and_plotly_is_embedded_once(report):
    path, page, _, _ = report
    parsed = _Page()
    parsed.feed(page)
    figures = {task: [i for i in parsed.ids if i.startswith(f"{task}-figure-")]
               for task in TASKS}
    # metric panel, ROC/PR, confusion, calibration (+ track for per-base, + variant scores)
    assert {task: len(ids) for task, ids in figures.items()} == {
        "promoters": 4, "chloroplast_cds": 5, "brca1_lof": 5}
    assert page.count("plotly.js v") == 1  # the library's banner: embedded once
    assert "promoters-pareto" in parsed.ids and "train-0" in parsed.ids
    assert path.stat().st_size < 10_000_000


def test_self_contained_one_timings_table_and_provenance(report):
    _, page, _, data_file = report
    parsed = _Page()
    parsed.feed(page)
    assert parsed.links == []  # nothing fetched: no src/href other than in-page anchors
    assert parsed.counts.get("link", 0) == 0
    assert parsed.ids.count("timings-table") == 1 and "latency (ms)" in page
    assert "Machine: Test CPU, 2 logical CPUs." in page
    assert sha256sum(data_file) in page and __version__ in page
    assert '&#34;cnn_epochs&#34;: 5' in page or '"cnn_epochs": 5' in page
    jobs = page.split('id="jobs"')[1].split("</table>")[0]
    assert "finetune/promoters" in jobs and "123.4" in jobs and "2048" in jobs
    assert "eval_n_tokens" not in page.split('id="training"')[1]  # counts are not curves


@pytest.mark.parametrize("breakage, message", [
    (lambda r, p, d: r.drop(columns="metric"), "lacks column"),
    (lambda r, p, d: r.iloc[:0], "no rows"),
    (lambda r, p, d: r.assign(value=np.nan), "NaN"),
    (lambda r, p, d: (d / "empty.csv").write_text("") and None or d / "empty.csv",
     "0-byte"),
    (lambda r, p, d: d / "missing.parquet", "not found"),
])
def test_bad_results_tables_are_named_errors_and_write_nothing(tmp_path, breakage, message):
    results, predictions = _tables()
    out = tmp_path / "out" / "report.html"
    with pytest.raises(DataError, match=message):
        PerformanceAnalyzer(bootstrap=SETTINGS).generate_report(
            breakage(results, predictions, tmp_path), out, predictions=predictions)
    assert not out.exists()


def test_bad_predictions_are_named_errors(tmp_path):
    results, predictions = _tables()
    nan = predictions.copy()
    nan.loc[0, "prob_1"] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        PerformanceAnalyzer(bootstrap=SETTINGS).generate_report(
            results, tmp_path / "r.html", predictions=nan)
    uneven = predictions.drop(index=0)
    with pytest.raises(DataError, match="different test examples"):
        PerformanceAnalyzer(bootstrap=SETTINGS).generate_report(
            results, tmp_path / "r.html", predictions=uneven)
    with pytest.raises(DataError, match="lacks column"):
        PerformanceAnalyzer(bootstrap=SETTINGS).generate_report(
            results, tmp_path / "r.html", predictions=predictions.drop(columns="target"))
    assert not (tmp_path / "r.html").exists()


def test_cli_report_from_files_and_a_task_without_predictions(tmp_path):
    from hyena_glt.cli import main

    results, predictions = _tables()
    results.to_parquet(tmp_path / "results.parquet", index=False)
    predictions[predictions["dataset"] != "brca1_lof"].to_parquet(tmp_path / "pred.parquet")
    out = tmp_path / "report.html"
    (tmp_path / "config.yaml").write_text("seed: 3\n")
    assert main(["report", "--results", str(tmp_path / "results.parquet"), "--predictions",
                 str(tmp_path / "pred.parquet"), "--resamples", "50", "--config",
                 str(tmp_path / "config.yaml"), "--out", str(out)]) == 0
    parsed = _Page()
    parsed.feed(out.read_text())
    rows = {row[0]: row for row in parsed.rows if row}
    assert "no per-example predictions" in rows["brca1_lof"][-1]
    # The same model, task and metric twice is an error naming them; nothing is written.
    assert main(["report", "--results", str(tmp_path / "results.parquet"), "--results",
                 str(tmp_path / "results.parquet"), "--out", str(tmp_path / "dup.html")]) == 2
    assert not (tmp_path / "dup.html").exists()


def _chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Headless Chromium with every network request failing (offline), logging the console."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=15000"]
    return subprocess.run(flags + list(arguments), capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium_offline(report, tmp_path):
    path, _, _, _ = report
    screenshot = tmp_path / "report.png"
    shot = _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2400",
                     path.resolve().as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line
               or "Uncaught" in line]
    assert console == []
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a blank page is ~5 KB
    dom = _chromium(tmp_path, "--dump-dom", path.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = _Page()
    rendered.feed(dom.stdout)
    assert {row[0] for row in rendered.rows if row} == set(TASKS)
    for task in TASKS:  # every figure was drawn by plotly.js (an SVG inside its div)
        section = dom.stdout.split(f'id="task-{task}"')[1].split("</section>")[0]
        assert section.count('class="main-svg"') >= 2 * section.count(f'id="{task}-figure-')


def test_multi_class_task_is_scored_by_macro_f1(tmp_path):
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, 150)
    frames = []
    for model, signal in (("finetuned", 2.0), ("kmer_baseline", 0.5)):
        logits = rng.normal(size=(150, 3)) + signal * np.eye(3)[target]
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        frames.append(predictions_frame(model, "multiloc", "sequence_classification", target,
                                        probs, np.arange(150)))
    results = pd.DataFrame({"model": ["finetuned", "kmer_baseline"], "dataset": "multiloc",
                            "metric": "f1_macro", "value": [0.7, 0.5]})
    page = PerformanceAnalyzer(bootstrap=SETTINGS).generate_report(
        results, tmp_path / "r.html", predictions=pd.concat(frames)).read_text()
    parsed = _Page()
    parsed.feed(page)
    (row,) = [row for row in parsed.rows if row]
    assert row[3] == "f1_macro" and row[9] == "better"
    # metric panel and confusion matrices; no ROC or calibration for three classes
    assert len([i for i in parsed.ids if i.startswith("multiloc-figure-")]) == 2
