"""PerformanceAnalyzer's HTML report: content, self-containment, bad inputs, and a real render
in headless Chromium (skipped when /usr/bin/chromium is absent)."""

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
from hyena_glt.evaluation import PerformanceAnalyzer, plots
from hyena_glt.io import sha256sum

CHROMIUM = Path("/usr/bin/chromium")


class _Tags(HTMLParser):
    """Counts start tags and collects every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.links: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset"):
                self.links.append(value)
            if name == "id":
                self.ids.append(value)


def _results() -> pd.DataFrame:
    rows = []
    costs = {"hyena": (20000, 80000, 12.0), "kmer": (5000, 40000, 3.0), "cnn": (70000, 280000,
                                                                               6.0)}
    values = {"hyena": (0.81, 0.80, 0.90), "kmer": (0.78, 0.77, 0.85), "cnn": (0.74, 0.73, 0.86)}
    for model, metrics in values.items():
        for metric, value in zip(("accuracy", "f1_macro", "auroc"), metrics, strict=True):
            params, size, latency = costs[model]
            rows.append({"model": model, "dataset": "promoters", "metric": metric,
                         "value": value, "n_parameters": params, "size_bytes": size,
                         "latency_ms": latency, "throughput_seq_per_s": 1000 / latency})
    return pd.DataFrame(rows)


def _predictions() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for model in ("hyena", "kmer", "cnn"):
        target = rng.integers(0, 2, 50)
        p1 = np.clip(0.5 * target + rng.uniform(0, 0.5, 50), 0, 1)
        frames.append(pd.DataFrame({"model": model, "dataset": "promoters", "target": target,
                                    "prob_0": 1 - p1, "prob_1": p1}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def report_inputs(tmp_path, shared_data):
    log = tmp_path / "run" / "metrics.jsonl"
    log.parent.mkdir()
    log.write_text("".join(json.dumps({"step": s, "loss": 1 / s, "eval_accuracy": 0.5 + s / 100})
                           + "\n" for s in range(1, 11)))
    compression = tmp_path / "compression.json"
    compression.write_text(json.dumps({"variants": [
        {"name": "fp32", "accuracy": 0.81, "latency_ms": 12.0, "size_bytes": 80000},
        {"name": "int8", "accuracy": 0.80, "latency_ms": 7.0, "size_bytes": 20000},
        {"name": "pruned", "accuracy": 0.70, "latency_ms": 9.0, "size_bytes": 50000}]}))
    data_file = shared_data / "genomic_benchmarks" / "human_nontata_promoters" / "test.csv.gz"
    return {"predictions": _predictions(), "training_logs": [log],
            "compression_reports": [compression], "config": {"d_model": 16, "n_layers": 2},
            "data_files": [data_file]}


@pytest.fixture
def report(tmp_path, report_inputs):
    path = PerformanceAnalyzer().generate_report(_results(), tmp_path / "report.html",
                                                 **report_inputs)
    return path, path.read_text()


def test_report_sections_and_highlighted_best(report, report_inputs):
    path, page = report
    tags = _Tags()
    tags.feed(page)
    assert set(tags.ids) == {"summary", "metrics", "curves", "training", "compression",
                             "provenance"}
    # 3 metric bars + latency bars, ROC + PR + 3 confusion matrices, 2 training charts, Pareto.
    assert tags.counts["svg"] == 4 + 5 + 2 + 1
    best = re.findall(r"<tr><td>(\w+)</td>(.*?)</tr>", page.split('id="metrics"')[0])
    cells = {model: re.findall(r"<td( class=best)?>([^<]*)</td>", row) for model, row in best}
    header = re.findall(r"<th>([^<]*)</th>", page.split("class='summary'")[1].split("</tr>")[0])
    column = {name: i for i, name in enumerate(header[1:])}
    assert cells["hyena"][column["accuracy"]][0] == " class=best"  # 0.81 is best
    assert cells["cnn"][column["auroc"]][0] == ""  # 0.86 < hyena's 0.90
    assert cells["kmer"][column["latency_ms"]][0] == " class=best"  # fastest
    assert cells["kmer"][column["size_bytes"]] == (" class=best", "40,000")  # smallest
    data_file = report_inputs["data_files"][0]
    assert sha256sum(data_file) in page and __version__ in page
    assert '"d_model": 16' in page
    assert "<td>int8</td><td>0.8</td><td>7</td><td>20,000</td><td>yes</td>" in page
    assert "<td>pruned</td><td>0.7</td><td>9</td><td>50,000</td><td></td>" in page


def test_report_is_self_contained(report):
    _, page = report
    tags = _Tags()
    tags.feed(page)
    assert tags.links == []  # nothing is fetched: no src/href at all
    assert tags.counts.get("script", 0) == 0 and tags.counts.get("link", 0) == 0
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched


def test_compress_stage_report_becomes_two_pareto_points(tmp_path):
    measurement = {"parameters": 100, "nonzero_parameters": 100, "metric_name": "accuracy"}
    stage_report = tmp_path / "compression_report.json"
    stage_report.write_text(json.dumps({
        "method": "quantize", "settings": {}, "extra": {},
        "before": {**measurement, "size_bytes": 4000, "latency_ms": 10.0, "metric": 0.8},
        "after": {**measurement, "size_bytes": 1000, "latency_ms": 5.0, "metric": 0.79}}))
    out = PerformanceAnalyzer().generate_report(_results(), tmp_path / "r.html",
                                                 compression_reports=[stage_report])
    page = out.read_text()
    assert "<td>original</td><td>0.8</td><td>10</td><td>4,000</td><td>yes</td>" in page
    assert "<td>quantize</td><td>0.79</td><td>5</td><td>1,000</td><td>yes</td>" in page


def test_bad_inputs_name_the_problem_and_write_nothing(tmp_path):
    out = tmp_path / "r.html"
    with pytest.raises(DataError, match="lacks column"):
        PerformanceAnalyzer().generate_report(_results().drop(columns="metric"), out)
    bad_log = tmp_path / "metrics.jsonl"
    bad_log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": \n')
    with pytest.raises(DataError, match="line 2") as caught:
        PerformanceAnalyzer().generate_report(_results(), out, training_logs=[bad_log])
    assert str(bad_log) in str(caught.value)
    with pytest.raises(DataError, match="not found"):
        PerformanceAnalyzer().generate_report(tmp_path / "missing.parquet", out)
    assert list(tmp_path.iterdir()) == [bad_log]


def test_svg_helpers_escape_text_and_scale():
    bar = plots.bar_chart({"a<b": 0.5, "c": 1.0}, "t & t", highlight="c")
    assert bar.startswith("<svg") and "a&lt;b" in bar and "t &amp; t" in bar
    assert bar.count("<rect") == 2 and 'stroke="#000"' in bar
    line = plots.line_chart({"m": ([0, 1], [0, 1])}, "roc", diagonal=True)
    # With the unit square the curve runs corner to corner of the plot area.
    assert re.search(r'points="56\.0,252\.0 404\.0,28\.0"', line)
    heat = plots.heatmap([[1, 2], [3, 4]], ["a", "b"], ["a", "b"], "cm")
    assert heat.count("<rect") == 4 and ">4</text>" in heat


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _ = report
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    screenshot = tmp_path / "report.png"
    shot = subprocess.run(flags + [f"--screenshot={screenshot}", "--window-size=1280,2000",
                                   path.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert "Uncaught" not in shot.stderr and "CONSOLE" not in shot.stderr
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank page is ~5 KB
    dom = subprocess.run(flags + ["--dump-dom", path.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for element in ('id="summary"', 'id="curves"', 'id="compression"', 'class="best"',
                    "<svg"):
        assert element in dom.stdout
    if shutil.which("file"):
        described = subprocess.run(["file", str(screenshot)], capture_output=True, text=True)
        assert "1280 x 2000" in described.stdout


def _stage_report(path: Path, method: str, before_latency: float, after: tuple) -> Path:
    measurement = {"parameters": 100, "nonzero_parameters": 100, "metric_name": "accuracy"}
    accuracy, latency, size = after
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "method": method, "settings": {}, "extra": {},
        "before": {**measurement, "size_bytes": 4000, "latency_ms": before_latency,
                   "metric": 0.8},
        "after": {**measurement, "size_bytes": size, "latency_ms": latency,
                  "metric": accuracy}}))
    return path


def test_cli_report_concatenates_tasks_and_groups_compression(tmp_path):
    """Several result tables (a benchmark's, an evaluate table of another task) in one report:
    the best model per task and metric, breakdowns and counts left to the tables; one Pareto
    plot per task with one "original" point."""
    from hyena_glt.cli import main

    _results().to_parquet(tmp_path / "bench.parquet", index=False)
    evaluate = pd.DataFrame({"model": ["annotator"] * 4 + ["other"] * 4, "dataset": "cds",
                             "metric": ["accuracy", "mcc", "f1/CDS", "n_bases"] * 2,
                             "value": [0.7, 0.4, 0.75, 5000, 0.6, 0.5, 0.7, 5000]})
    evaluate.to_csv(tmp_path / "cds.tsv", sep="\t", index=False)
    quantize = _stage_report(tmp_path / "q" / "compression_report.json", "quantize", 10.0,
                             (0.79, 5.0, 1000))
    prune = _stage_report(tmp_path / "p" / "compression_report.json", "prune", 12.0,
                          (0.70, 11.0, 4000))
    out = tmp_path / "report.html"
    assert main(["report", "--results", str(tmp_path / "bench.parquet"), "--results",
                 str(tmp_path / "cds.tsv"), "--compression-report", f"promoters={quantize}",
                 "--compression-report", f"promoters={prune}", "--out", str(out)]) == 0
    page = out.read_text()
    best = dict(((d, m), (model, v)) for d, m, model, v in re.findall(
        r"<tr><td>([^<]*)</td><td>([^<]*)</td><td class=best>([^<]*)</td><td>([^<]*)</td></tr>",
        page.split("class='best-per-task'")[1].split("</table>")[0]))
    assert best == {("promoters", "accuracy"): ("hyena", "0.81"),
                    ("promoters", "f1_macro"): ("hyena", "0.8"),
                    ("promoters", "auroc"): ("hyena", "0.9"),
                    ("cds", "accuracy"): ("annotator", "0.7"),
                    ("cds", "mcc"): ("other", "0.5")}
    summary = page.split('id="summary"')[1].split('id="metrics"')[0]
    assert "f1/CDS" not in summary and "n_bases" not in summary
    compression = page.split('id="compression"')[1]
    assert "<h3>promoters</h3>" in compression and compression.count("<svg") == 1
    # One original point (median of the two "before" latencies), the variants after it.
    assert "<td>original</td><td>0.8</td><td>11</td><td>4,000</td><td>yes</td>" in compression
    assert "<td>quantize</td><td>0.79</td><td>5</td><td>1,000</td><td>yes</td>" in compression
    assert "<td>prune</td><td>0.7</td><td>11</td><td>4,000</td><td></td>" in compression
    # The same model, task and metric twice is an error, and nothing is written.
    assert main(["report", "--results", str(tmp_path / "bench.parquet"), "--results",
                 str(tmp_path / "bench.parquet"), "--out", str(tmp_path / "dup.html")]) == 2
    assert not (tmp_path / "dup.html").exists()
