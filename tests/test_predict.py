"""``hyena-glt predict``: every output format on real files, with tiny models made here and the
bundled hyena-glt-base; bad inputs give one named line, exit 2 and leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.tokenizers import DNATokenizer, ProteinTokenizer
from hyena_glt.ingest.vcf import Variant, variant_windows
from hyena_glt.model import (
    HyenaGLTForCausalLM,
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
    HyenaGLTForVariantEffect,
)
from hyena_glt.prediction import (
    load_predictor,
    memory_budget_bases,
    split_points,
    window_starts,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
SARS = RESOURCES / "genomes" / "NC_045512.2.fa.gz"
SARS_LENGTH = 29_903
BRCA1_VCF = RESOURCES / "variants" / "brca1_1kgPhase3_variants.vcf.gz"
BRCA1_REF = RESOURCES / "variants" / "ref_brca1.fa.gz"
PROMOTERS = RESOURCES / "promoters" / "human_nontata_promoters.test_subset2000.csv.gz"

TINY = dict(d_model=16, n_layers=2, sequence_length=256, num_heads=2, filter_order=8,
            vocab_size=64, alphabet_size=22, dropout=0.0, use_dynamic_merging=False,
            local_decoder_layers=0)


def _save(directory: Path, cls: type, tokenizer=None, **fields) -> Path:
    torch.manual_seed(0)
    model = cls(HyenaGLTConfig(**{**TINY, **fields})).eval()
    model.save_pretrained(directory, tokenizer=tokenizer or DNATokenizer())
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "token": _save(root / "token", HyenaGLTForTokenClassification,
                       task_type="token_classification", id2label={0: "other", 1: "CDS"}),
        "token_rc": _save(root / "token_rc", HyenaGLTForTokenClassification,
                          task_type="token_classification", rc_average=True,
                          extra={"decision_threshold": 0.45}),
        "sequence": _save(root / "sequence", HyenaGLTForSequenceClassification,
                          task_type="sequence_classification", pooling="attention",
                          id2label={0: "background", 1: "promoter"}),
        "regression": _save(root / "regression", HyenaGLTForRegression, task_type="regression"),
        "variant": _save(root / "variant", HyenaGLTForVariantEffect, task_type="variant_effect"),
        "lm": _save(root / "lm", HyenaGLTForCausalLM),
        "protein": _save(root / "protein", HyenaGLTForSequenceClassification,
                         tokenizer=ProteinTokenizer(), task_type="protein_function",
                         alphabet_size=33),
    }


def predict(*args: str | Path) -> int:
    return main(["-q", "predict", *map(str, args)])


def read_track(path: Path) -> pd.DataFrame:
    """A bedGraph/BED file without its track line; coordinates as int."""
    lines = [line.split("\t") for line in path.read_text().splitlines()
             if not line.startswith(("track", "#"))]
    frame = pd.DataFrame(lines)
    frame[[1, 2]] = frame[[1, 2]].astype(int)
    return frame


def base_values(bedgraph: pd.DataFrame, chrom: str, length: int) -> np.ndarray:
    """Per-base values of one contig, checking the runs tile ``[0, length)`` exactly."""
    rows = bedgraph[bedgraph[0] == chrom]
    assert rows[1].iloc[0] == 0 and rows[2].iloc[-1] == length
    assert (rows[1].to_numpy()[1:] == rows[2].to_numpy()[:-1]).all()  # contiguous, no overlap
    assert (rows[1] < rows[2]).all()
    return np.repeat(rows[3].astype(float).to_numpy(), rows[2] - rows[1])


# --- windows --------------------------------------------------------------------------------


@pytest.mark.parametrize("length,window,overlap", [(100, 256, 64), (256, 256, 64),
                                                   (1000, 256, 64), (1001, 200, 0),
                                                   (5000, 300, 100)])
def test_windows_cover_every_base_once_with_context(length, window, overlap):
    starts = window_starts(length, window, overlap)
    splits = split_points(starts, length, window)
    assert splits[0] == 0 and splits[-1] == length and (np.diff(splits) > 0).all()
    ends = np.minimum(starts + window, length)
    assert (starts <= splits[:-1]).all() and (splits[1:] <= ends).all()
    assert (ends - starts == min(window, length)).all()  # the last window is aligned to the end
    inner_left = splits[1:-1] - starts[1:]  # context before the first base a window writes
    inner_right = ends[:-1] - splits[1:-1]  # and after the last
    assert (inner_left >= overlap // 2).all() and (inner_right >= overlap // 2).all()


def test_at_most_one_batch_of_windows_is_read_at_a_time():
    from hyena_glt.ingest.vcf import open_reference
    from hyena_glt.prediction.tracks import _contig_batches

    with open_reference(SARS) as fasta:
        batches = list(_contig_batches(fasta, "NC_045512.2", 1000, 100, 4))
    covered = [base for batch in batches for _, _, begin, end in batch
               for base in range(begin, end)]
    assert covered == list(range(SARS_LENGTH))  # every base written once, in order
    for batch in batches:
        assert len(batch) <= 4 and all(len(text) == 1000 for _, text, _, _ in batch)
        assert batch[-1][0] + 1000 - batch[0][0] <= memory_budget_bases(1000, 4)


# --- per-base tracks ------------------------------------------------------------------------


def test_sars_cov_2_tracks_are_half_open_inside_the_contig_and_agree(models, tmp_path):
    pytest.importorskip("pyBigWig")
    import pyBigWig

    out = tmp_path / "sars"
    assert predict(models["token"], SARS, "--out", out, "--window", "200", "--bigwig") == 0
    values = base_values(read_track(out / "probability.bedGraph"), "NC_045512.2", SARS_LENGTH)
    assert ((0 <= values) & (values <= 1)).all()
    bed = read_track(out / "features.bed")
    assert set(bed[0]) == {"NC_045512.2"} and set(bed[3]) == {"CDS"}
    assert (bed[1] >= 0).all() and (bed[2] <= SARS_LENGTH).all() and (bed[1] < bed[2]).all()
    assert (bed[1].to_numpy()[1:] > bed[2].to_numpy()[:-1]).all()  # sorted, maximal runs
    inside = np.zeros(SARS_LENGTH, dtype=bool)
    for start, end in zip(bed[1], bed[2], strict=True):
        inside[start:end] = True
    assert values[inside].min() >= 0.5 - 5e-4 and values[~inside].max() <= 0.5 + 5e-4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threshold"] == 0.5 and summary["threshold_source"].startswith("default")
    assert "default" in (out / "features.bed").read_text().splitlines()[0]
    assert summary["features"] == len(bed) and summary["bases"] == SARS_LENGTH
    with pyBigWig.open(str(out / "probability.bw")) as bigwig:
        assert bigwig.chroms() == {"NC_045512.2": SARS_LENGTH}
        np.testing.assert_allclose(bigwig.values("NC_045512.2", 0, SARS_LENGTH), values,
                                   atol=1e-6)


def test_tracks_keep_contig_names_and_do_not_depend_on_batching(models, tmp_path,
                                                                   write_fasta):
    rng = np.random.default_rng(0)
    contigs = [(name, "".join(rng.choice(list("ACGT"), n))) for name, n in
               (("chrShort", 100), ("plasmid_2", 700), ("chr3", 1000))]
    fasta = write_fasta(contigs, name="genome.fa.gz")
    outputs = []
    for batch in ("1", "5"):
        out = tmp_path / f"batch{batch}"
        assert predict(models["token"], fasta, "--out", out, "--batch-size", batch) == 0
        outputs.append({name: (out / name).read_text() for name in
                        ("probability.bedGraph", "features.bed")})
    assert outputs[0] == outputs[1]
    bedgraph = read_track(tmp_path / "batch1" / "probability.bedGraph")
    assert list(dict.fromkeys(bedgraph[0])) == [name for name, _ in contigs]
    # A contig shorter than the window is one window: the values are the model's own.
    short = base_values(bedgraph, "chrShort", 100)
    predictor = load_predictor(models["token"], "cpu")
    ids = DNATokenizer().encode_array(contigs[0][1])[None].astype(np.int64)
    direct = predictor.logits(ids, np.ones_like(ids)).softmax(-1)[0, :, 1].numpy()
    np.testing.assert_allclose(short, direct, atol=5e-4 + 1e-6)
    for name, sequence in contigs:
        base_values(bedgraph, name, len(sequence))


def test_stored_threshold_and_rc_average_are_used(models, tmp_path):
    out = tmp_path / "rc"
    assert predict(models["token_rc"], SARS, "--out", out, "--window", "128") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threshold"] == 0.45 and "stored" in summary["threshold_source"]
    values = base_values(read_track(out / "probability.bedGraph"), "NC_045512.2", SARS_LENGTH)
    bed = read_track(out / "features.bed")
    for start, end in zip(bed[1], bed[2], strict=True):
        assert values[start:end].min() >= 0.45 - 5e-4
    assert load_predictor(models["token_rc"], "cpu").config.rc_average


# --- per-sequence predictions and embeddings ------------------------------------------------


def test_sequence_predictions_from_fasta_and_table(models, tmp_path, write_fasta):
    table = pd.read_csv(PROMOTERS).head(12)
    table_path = tmp_path / "promoters.tsv"
    table.to_csv(table_path, sep="\t", index=False)
    fasta = write_fasta([(f"seq{i}", s) for i, s in enumerate(table["sequence"])],
                        name="promoters.fa.gz")
    for source, ids in ((fasta, [f"seq{i}" for i in range(12)]),
                        (table_path, [str(i) for i in range(12)])):
        out = tmp_path / source.name.split(".")[0]
        assert predict(models["sequence"], source, "--out", out, "--batch-size", "5") == 0
        frame = pd.read_parquet(out / "predictions.parquet")
        tsv = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"id": str})
        assert frame["id"].tolist() == tsv["id"].tolist() == ids
        probs = frame[["prob_background", "prob_promoter"]].to_numpy()
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
        expected = np.where(probs[:, 1] > probs[:, 0], "promoter", "background")
        assert frame["predicted_label"].tolist() == expected.tolist()
        assert (frame["length"] == 251).all() and not frame["truncated"].any()
    out = tmp_path / "regression"
    assert predict(models["regression"], table_path, "--out", out) == 0
    frame = pd.read_parquet(out / "predictions.parquet")
    assert list(frame.columns) == ["id", "length", "truncated", "prediction"]


def test_embeddings_of_promoters_with_hyena_glt_base(tmp_path, write_fasta):
    sequences = pd.read_csv(PROMOTERS).head(3)["sequence"].tolist()
    long = "ACGT" * 1100  # 4,400 nt: longer than the base model's 4,096-token input
    fasta = write_fasta([("p0", sequences[0]), ("p1", sequences[1]), ("p2", sequences[2]),
                         ("long", long)])
    out = tmp_path / "emb"
    assert predict("hyena-glt-base", fasta, "--out", out, "--embeddings") == 0
    frame = pd.read_parquet(out / "embeddings.parquet")
    assert frame["id"].tolist() == ["p0", "p1", "p2", "long"]
    assert frame["length"].tolist() == [251, 251, 251, 4400]
    matrix = np.stack(frame["embedding"].to_numpy())
    assert matrix.shape == (4, 128) and np.isfinite(matrix).all()
    assert not (out / "predictions.parquet").exists()  # a causal LM has no per-sequence task


def test_embeddings_add_the_pooled_vector_of_an_attention_head(models, tmp_path, write_fasta):
    fasta = write_fasta([("a", "ACGTTGCA" * 20), ("b", "GGGCCCAT" * 10)])
    out = tmp_path / "both"
    assert predict(models["sequence"], fasta, "--out", out, "--embeddings") == 0
    frame = pd.read_parquet(out / "embeddings.parquet")
    assert list(frame.columns) == ["id", "length", "embedding", "pooled"]
    assert len(frame["pooled"][0]) == 16
    assert (out / "predictions.parquet").is_file()


# --- VCF ------------------------------------------------------------------------------------


def test_annotated_vcf_reopens_and_keeps_every_record(models, tmp_path):
    out = tmp_path / "vcf"
    assert predict(models["variant"], BRCA1_VCF, "--reference", BRCA1_REF, "--out", out,
                   "--window", "32", "--batch-size", "64") == 0
    with pysam.VariantFile(str(BRCA1_VCF)) as vcf:
        expected = [(r.chrom, r.pos, r.ref, r.alts) for r in vcf]
    with pysam.VariantFile(str(out / "annotated.vcf.gz")) as vcf:
        records = list(vcf)
        info = vcf.header.info
        assert info["HGLT_SCORE"].number == "A" and "fine-tuned" in info["HGLT_SCORE"].description
        assert "indel" in info["HGLT_SKIP"].description
    assert [(r.chrom, r.pos, r.ref, r.alts) for r in records] == expected
    for record in records:
        substitutions = [len(a) == len(record.ref) and not a.startswith("<")
                         for a in record.alts]
        scores = record.info.get("HGLT_SCORE", (None,) * len(record.alts))
        assert [s is not None for s in scores] == substitutions
        if not all(substitutions):
            assert set(record.info["HGLT_SKIP"]) <= {"indel", "symbolic"}
        assert all(s is None or 0 <= s <= 1 for s in scores)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == len(expected) == 2052
    assert summary["indel"] + summary["symbolic"] == sum("HGLT_SKIP" in r.info for r in records)
    assert (out / "annotated.vcf.gz.tbi").is_file()
    with pysam.VariantFile(str(out / "annotated.vcf.gz")) as vcf:  # the index works
        assert len(list(vcf.fetch("ref_brca1", 0, 1000))) == sum(
            1 for r in records if r.pos <= 1000)


def _write_vcf(path: Path, rows: list[str], contigs=("ref_brca1", "chrX")) -> Path:
    header = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c}>" for c in contigs),
              '##ALT=<ID=DEL,Description="Deletion">',
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    path.write_text("\n".join(header + rows) + "\n")
    return path


def test_unscorable_records_are_flagged_and_counted_and_scores_line_up(models, tmp_path):
    reference = pysam.FastaFile(str(BRCA1_REF))
    base = reference.fetch("ref_brca1", 999, 1000).upper()
    other = "A" if base != "A" else "C"
    length = reference.get_reference_length("ref_brca1")
    rows = [f"ref_brca1\t1000\tsnv\t{base}\t{other}\t.\t.\t.",
            f"ref_brca1\t1000\tmismatch\t{other}\t{base}\t.\t.\t.",
            f"ref_brca1\t2000\tdel\t{reference.fetch('ref_brca1', 1999, 2001)}\t"
            f"{reference.fetch('ref_brca1', 1999, 2000)}\t.\t.\t.",
            f"ref_brca1\t3000\tsym\t{reference.fetch('ref_brca1', 2999, 3000)}\t<DEL>\t.\t.\t.",
            f"ref_brca1\t4000\tnoalt\t{reference.fetch('ref_brca1', 3999, 4000)}\t.\t.\t.\t.",
            f"ref_brca1\t{length + 5}\tpast\tA\tC\t.\t.\t.",
            "chrX\t10\toff\tA\tC\t.\t.\t."]
    vcf = _write_vcf(tmp_path / "mixed.vcf", rows)
    out = tmp_path / "mixed"
    assert predict(models["lm"], vcf, "--reference", BRCA1_REF, "--out", out,
                   "--window", "64") == 0
    with pysam.VariantFile(str(out / "annotated.vcf.gz")) as annotated:
        records = {r.id: r for r in annotated}
    assert set(records) == {"snv", "mismatch", "del", "sym", "noalt", "past", "off"}
    flags = {name: tuple(r.info.get("HGLT_SKIP", ())) for name, r in records.items()}
    assert flags == {"snv": (), "mismatch": ("ref_mismatch",), "del": ("indel",),
                     "sym": ("symbolic",), "noalt": ("no_alt",), "past": ("off_contig",),
                     "off": ("off_contig",)}
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["records"], summary["alleles_scored"], summary["off_contig"]) == (7, 1, 2)
    # The score written is the LM's Δ log-likelihood of exactly this variant's windows,
    # averaged over both strands.
    predictor = load_predictor(models["lm"], "cpu")
    ref_window, alt_window, _ = variant_windows(
        reference, Variant("ref_brca1", 1000, base, other), 64)
    tokenizer = DNATokenizer()
    ids = torch.tensor(np.stack([tokenizer.encode_array(w) for w in
                                 (ref_window, alt_window)]).astype(np.int64))
    ll = predictor.model.sequence_log_likelihood(ids)
    rc_ll = predictor.model.sequence_log_likelihood(tokenizer.reverse_complement_ids(ids))
    expected = float((ll[1] - ll[0] + rc_ll[1] - rc_ll[0]) / 2)
    assert float(ll[1] - ll[0]) != pytest.approx(expected, abs=1e-4)  # the strands differ
    assert records["snv"].info["HGLT_DLL"][0] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_bcf_input_is_read_like_a_vcf(models, tmp_path):
    bcf = tmp_path / "brca1.bcf"
    with pysam.VariantFile(str(BRCA1_VCF)) as source, \
            pysam.VariantFile(str(bcf), "wb", header=source.header) as target:
        for _, record in zip(range(30), source, strict=False):
            target.write(record)
    out = tmp_path / "bcf"
    assert predict(models["lm"], bcf, "--reference", BRCA1_REF, "--out", out,
                   "--window", "32") == 0
    with pysam.VariantFile(str(out / "annotated.vcf.gz")) as annotated:
        assert sum(1 for _ in annotated) == 30


def test_zero_shot_scores_with_hyena_glt_base(tmp_path):
    with pysam.VariantFile(str(BRCA1_VCF)) as source:
        rows = [str(record).rstrip("\n").split("\t")[:8] for _, record in
                zip(range(15), source, strict=False)]
    vcf = _write_vcf(tmp_path / "first15.vcf", ["\t".join(r) for r in rows], ("ref_brca1",))
    out = tmp_path / "base"
    assert predict("hyena-glt-base", vcf, "--reference", BRCA1_REF, "--out", out,
                   "--window", "128") == 0
    with pysam.VariantFile(str(out / "annotated.vcf.gz")) as annotated:
        assert "Zero-shot" in annotated.header.info["HGLT_DLL"].description
        deltas = [r.info["HGLT_DLL"][0] for r in annotated if "HGLT_DLL" in r.info]
    assert len(deltas) >= 10 and np.isfinite(deltas).all()


# --- bad inputs -----------------------------------------------------------------------------


def _vcf_of_another_build(tmp_path: Path) -> list[str]:
    with pysam.FastaFile(str(BRCA1_REF)) as reference:
        sequence = reference.fetch("ref_brca1", 0, 2000).upper()
    complement = {"A": "C", "C": "G", "G": "T", "T": "A", "N": "A"}
    rows = [f"ref_brca1\t{p}\t.\t{complement[sequence[p - 1]]}\t{sequence[p - 1]}\t.\t.\t."
            for p in range(100, 2000, 100)]
    return [_write_vcf(tmp_path / "build.vcf", rows, ("ref_brca1",)), "--reference", BRCA1_REF]


BAD_INPUTS = {
    "sequence model on a VCF": (
        "sequence", lambda t: [BRCA1_VCF, "--reference", BRCA1_REF], "variant_effect"),
    "VCF without reference": ("lm", lambda t: [BRCA1_VCF], "--reference"),
    "VCF of another reference": (
        "lm", lambda t: [BRCA1_VCF, "--reference", SARS], "another reference"),
    "VCF of another build": ("lm", _vcf_of_another_build, "another reference build"),
    "per-base model on a table": ("token", lambda t: [PROMOTERS], "sequence_classification"),
    "protein model on DNA": ("protein", lambda t: [SARS], "protein model"),
    "causal LM without --embeddings": ("lm", lambda t: [SARS], "--embeddings"),
    "unknown model": (None, lambda t: [SARS], "register-model"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_are_one_named_line_exit_2_and_leave_nothing(case, models, tmp_path, capsys):
    model, arguments, expected = BAD_INPUTS[case]
    args = arguments(tmp_path)
    out = tmp_path / "out"
    capsys.readouterr()
    assert predict(models.get(model, "no-such-model"), *args, "--out", out) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyena-glt predict: error: ")
    assert expected in lines[0]
    assert Path(args[0]).name in lines[0] or case == "unknown model"
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_failed_run_leaves_the_previous_output_as_it_was(models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    assert predict(models["sequence"], BRCA1_VCF, "--reference", BRCA1_REF, "--out", out) == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# --- compressed and exported models ---------------------------------------------------------


def test_quantized_and_onnx_models_predict_per_base_like_the_float_model(models, tmp_path):
    from hyena_glt.optimization import (
        DeploymentConfig,
        ModelOptimizer,
        ModelQuantizer,
        load_compressed,
        save_compressed,
    )

    float_model = load_compressed(models["token"])
    quantized = tmp_path / "quantized"
    save_compressed(ModelQuantizer().quantize(float_model), quantized)
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    ids = torch.tensor(np.stack([DNATokenizer().encode_array(s * 64) for s in ("ACGT", "GATC")]
                                ).astype(np.int64))  # batch 2: the batch axis stays dynamic
    ModelOptimizer(DeploymentConfig(output_path=str(onnx_dir / "model.onnx"))).optimize(
        float_model, (ids, torch.ones_like(ids)))
    tracks = {}
    for name, directory in (("float", models["token"]), ("int8", quantized),
                            ("onnx", onnx_dir)):
        out = tmp_path / f"out_{name}"
        assert predict(directory, SARS, "--out", out, "--window", "256") == 0
        tracks[name] = base_values(read_track(out / "probability.bedGraph"), "NC_045512.2",
                                   SARS_LENGTH)
        assert json.loads((out / "summary.json").read_text())["task"] == "token_classification"
    np.testing.assert_allclose(tracks["onnx"], tracks["float"], atol=2e-3)
    np.testing.assert_allclose(tracks["int8"], tracks["float"], atol=0.05)
    assert predict(onnx_dir, SARS, "--out", tmp_path / "emb", "--embeddings") == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_bf16_tracks_match_the_cpu(models, tmp_path):
    outputs = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        assert predict(models["token"], SARS, "--out", out, "--device", device) == 0
        outputs[device] = base_values(read_track(out / "probability.bedGraph"), "NC_045512.2",
                                      SARS_LENGTH)
    np.testing.assert_allclose(outputs["cuda"], outputs["cpu"], atol=0.02)
