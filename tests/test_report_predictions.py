"""The report's Predictions section: links to what ``hyena-glt predict`` wrote, the counts of its
summary.json, and a per-base track compared with a GFF3 annotation (figure and per-base F1)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyena_glt.cli import main
from hyena_glt.errors import DataError
from hyena_glt.evaluation.prediction_outputs import (
    PredictionOutput,
    binned_track,
    prediction_context,
    read_bedgraph,
)

# chr1 (100 bp): annotated CDS [10, 40) and [60, 80), predicted [20, 50) and [60, 70);
# chr2 (50 bp): nothing annotated, predicted [5, 15). Over 150 bases: TP 30, FP 20, FN 20,
# TN 80, so precision = recall = F1 = 30 / 50 = 0.6 and MCC = (30*80 - 20*20) / (50*50*100*100)
# ** 0.5 = 0.4.
BEDGRAPH = ('track type=bedGraph name="P(CDS)"\n'
            "chr1\t0\t20\t0.1\nchr1\t20\t50\t0.9\nchr1\t50\t60\t0.1\nchr1\t60\t70\t0.8\n"
            "chr1\t70\t100\t0.1\nchr2\t0\t5\t0.2\nchr2\t5\t15\t0.7\nchr2\t15\t50\t0.2\n")
FEATURES = ('track name="CDS"\nchr1\t20\t50\tCDS\t900\t.\nchr1\t60\t70\tCDS\t800\t.\n'
            "chr2\t5\t15\tCDS\t700\t.\n")
GFF3 = ("##gff-version 3\n"
        "chr1\tRefSeq\tgene\t5\t90\t.\t+\t.\tID=g1\n"
        "chr1\tRefSeq\tCDS\t11\t40\t.\t+\t0\tID=c1\n"
        "chr1\tRefSeq\tCDS\t61\t80\t.\t-\t0\tID=c2\n"
        "chr3\tRefSeq\tCDS\t1\t30\t.\t+\t0\tID=c3\n")  # a contig not predicted: ignored


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and not attrs.get("href", "#").startswith("#"):
            self.hrefs.append(attrs["href"])
        if "id" in attrs:
            self.ids.append(attrs["id"])


def _write(directory: Path, files: dict[str, str], summary: dict) -> Path:
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    outputs = sorted(files) + ["summary.json"]
    (directory / "summary.json").write_text(json.dumps({**summary, "outputs": outputs}))
    return directory


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    predictions = tmp_path / "results" / "predictions"
    tracks = _write(predictions / "cds", {"probability.bedGraph": BEDGRAPH,
                                          "features.bed": FEATURES},
                    {"model": "results/models/finetuned/chloroplast_cds",
                     "task": "token_classification", "input": "genome.fa.gz",
                     "input_kind": "fasta", "contigs": 2, "bases": 150, "features": 3,
                     "threshold": 0.5})
    variants = _write(predictions / "vcf", {"annotated.vcf.gz": "", "annotated.vcf.gz.tbi": ""},
                      {"model": "brca1_lof", "task": "variant_effect", "input": "v.vcf.gz",
                       "input_kind": "vcf", "records": 12, "records_scored": 10,
                       "alleles_scored": 11, "indel": 2})
    annotation = tmp_path / "genome.gff3.gz"
    annotation.write_bytes(gzip.compress(GFF3.encode()))
    return {"cds": tracks, "vcf": variants, "annotation": annotation}


def _report(tmp_path: Path, outputs: dict[str, Path], *extra: str) -> tuple[int, Path]:
    results = tmp_path / "results.csv"
    pd.DataFrame({"model": ["finetuned"], "dataset": ["promoters"], "metric": ["auroc"],
                  "value": [0.8]}).to_csv(results, index=False)
    out = tmp_path / "results" / "report" / "report.html"
    status = main(["report", "--results", str(results), "--resamples", "20",
                   "--prediction-output", f"cds={outputs['cds']}",
                   "--prediction-output", f"vcf={outputs['vcf']}", *extra, "--out", str(out)])
    return status, out


def test_section_links_the_files_states_the_f1_and_draws_the_track(tmp_path, outputs):
    status, out = _report(tmp_path, outputs, "--prediction-annotation",
                          f"cds={outputs['annotation']}")
    assert status == 0
    page = out.read_text()
    parsed = _Links()
    parsed.feed(page)
    assert "../predictions/cds/probability.bedGraph" in parsed.hrefs
    assert "../predictions/vcf/annotated.vcf.gz" in parsed.hrefs
    assert len(parsed.hrefs) == 6 and all((out.parent / h).is_file() for h in parsed.hrefs)
    stated = {key: float(re.search(f'<span class="{key}">([0-9.]+)</span>', page).group(1))
              for key in ("precision", "recall", "f1", "mcc")}
    assert stated == {"precision": 0.6, "recall": 0.6, "f1": 0.6, "mcc": 0.4}
    assert "prediction-cds" in parsed.ids and "prediction-vcf" not in parsed.ids
    figure = page.split('id="prediction-cds"')[1].split("</script>")[0]
    assert "annotated CDS" in figure and "predicted CDS" in figure
    table = page.split('id="predictions-table"')[1].split("</table>")[0]
    assert "bases: 150" in table and "features: 3" in table and "tracks" in table
    assert "records scored: 10" in table and "records flagged, none scored: 2" in table


def test_without_an_annotation_the_outputs_are_listed_without_a_figure(tmp_path, outputs):
    status, out = _report(tmp_path, outputs)
    page = out.read_text()
    assert status == 0 and 'id="predictions-table"' in page
    assert 'id="prediction-cds"' not in page and 'class="f1"' not in page


def test_the_figure_is_binned_to_exact_means():
    runs = (np.array([0, 20, 50]), np.array([20, 50, 100]), np.array([0.1, 0.9, 0.3]))
    positions, means = binned_track(runs, 100, bins=8)
    per_base = np.repeat(runs[2], runs[1] - runs[0])
    cuts = np.unique(np.linspace(0, 100, 9).round()).astype(int)
    assert np.allclose(means, [per_base[a:b].mean() for a, b in
                               zip(cuts[:-1], cuts[1:], strict=True)])
    assert np.allclose(positions, (cuts[:-1] + cuts[1:]) / 2)
    assert len(binned_track(runs, 100)[0]) == 100  # never more points than bases


@pytest.mark.parametrize("breakage, message", [
    (lambda d, a: (d / "summary.json").unlink(), "no summary.json"),
    (lambda d, a: (d / "features.bed").unlink(), "features.bed, which is missing"),
    (lambda d, a: (d / "probability.bedGraph").write_text("chr1\t0\tten\t0.5\n"),
     "probability.bedGraph: line 1"),
    (lambda d, a: a.write_bytes(gzip.compress(GFF3.replace("chr1", "chrX").encode())),
     "no seqid of the annotation"),
])
def test_bad_outputs_are_one_named_error(tmp_path, outputs, capsys, breakage, message):
    breakage(outputs["cds"], outputs["annotation"])
    status, out = _report(tmp_path, outputs, "--prediction-annotation",
                          f"cds={outputs['annotation']}")
    error = capsys.readouterr().err
    assert status == 2 and message in error and "Traceback" not in error
    assert not out.exists()


def test_an_annotation_needs_a_per_base_output(tmp_path, outputs):
    with pytest.raises(DataError, match="holds no per-base track"):
        prediction_context(PredictionOutput("vcf", outputs["vcf"], outputs["annotation"]),
                           tmp_path)
    status, _ = _report(tmp_path, outputs, "--prediction-annotation",
                        f"other={outputs['annotation']}")
    assert status == 2
    assert set(read_bedgraph(outputs["cds"] / "probability.bedGraph")) == {"chr1", "chr2"}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_the_track_renders_in_headless_chromium(tmp_path, outputs):
    """plotly.js draws the track (an SVG in its div) with no console error, offline."""
    status, out = _report(tmp_path, outputs, "--prediction-annotation",
                          f"cds={outputs['annotation']}")
    assert status == 0
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=15000", "--dump-dom", out.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0 and "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    section = dom.stdout.split('id="prediction-cds-track"')[1].split("</section>")[0]
    assert 'class="main-svg"' in section
