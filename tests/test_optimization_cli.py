"""``hyena-glt quantize|prune|distill`` on a tiny saved classifier and real promoter rows."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.model import HyenaGLTForSequenceClassification, HyenaGLTForVariantEffect
from hyena_glt.optimization import (
    ExportedProgramModel,
    WeightOnlyInt8Linear,
    load_compressed,
    measured_sparsity,
)


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory):
    """A saved tiny model and a 40-row CSV (20 per class) of real sequences cut to 64 nt."""
    root = tmp_path_factory.mktemp("compress")
    frame = pd.read_csv(shared_data / "genomic_benchmarks" / "human_nontata_promoters"
                        / "test.csv.gz")
    sample = frame.groupby("label").head(20)
    sample.assign(sequence=[s[:64] for s in sample["sequence"].tolist()]).to_csv(
        root / "val.csv", index=False)
    torch.manual_seed(0)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=64,
                            num_heads=2, filter_order=16, dropout=0.0)
    HyenaGLTForSequenceClassification(config).save_pretrained(root / "model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops on a shared machine
    yield root
    torch.set_num_threads(threads)


def read_report(directory):
    return json.loads((directory / "compression_report.json").read_text())


def test_quantize_command_writes_model_and_report(workdir):
    out = workdir / "q"
    assert main(["quantize", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--out", str(out)]) == 0
    assert (out / "quantization.json").is_file()
    report = read_report(out)
    assert report["method"] == "quantization"
    assert report["after"]["size_bytes"] < report["before"]["size_bytes"]
    model = load_compressed(out)
    assert isinstance(model.head.out_proj, torch.ao.nn.quantized.dynamic.Linear)


def test_prune_command_reaches_sparsity(workdir):
    out = workdir / "p"
    assert main(["prune", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--out", str(out), "--sparsity", "0.6", "--train", str(workdir / "val.csv"),
                 "--fine-tune-steps", "1"]) == 0
    assert measured_sparsity(load_compressed(out)) == pytest.approx(0.6, abs=1e-3)
    assert read_report(out)["extra"]["achieved_sparsity"] == pytest.approx(0.6, abs=1e-3)


def test_distill_command_trains_a_narrower_student(workdir):
    out = workdir / "d"
    assert main(["distill", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--train", str(workdir / "val.csv"), "--out", str(out),
                 "--student-d-model", "8", "--steps", "3"]) == 0
    student = load_compressed(out)
    assert student.config.d_model == 8
    report = read_report(out)
    assert report["after"]["parameters"] < report["before"]["parameters"]
    assert report["extra"]["kl_to_teacher"] >= 0


def test_invalid_sparsity_is_a_one_line_user_error(workdir, capsys):
    status = main(["prune", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                   "--out", str(workdir / "bad"), "--sparsity", "1.5"])
    assert status == 2
    assert "--sparsity: 1.5 is out of range: must be a fraction in [0, 1)" in \
        capsys.readouterr().err
    assert not (workdir / "bad").exists()


@pytest.mark.parametrize("command", ["quantize", "prune", "distill", "export"])
def test_a_paired_variant_model_is_refused_with_one_line(workdir, capsys, command):
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=64,
                            num_heads=2, filter_order=16, task_type="variant_effect")
    model_dir = HyenaGLTForVariantEffect(config).save_pretrained(workdir / "variant_model")
    out = workdir / f"variant_{command}"
    train = ["--train", str(workdir / "val.csv")] if command == "distill" else []
    status = main([command, str(model_dir), "--val", str(workdir / "val.csv"), "--out",
                   str(out), *train])
    assert status == 2 and not out.exists()
    assert "HyenaGLTForVariantEffect, which reads ref/alt window pairs" in capsys.readouterr().err


def test_quantize_weight_only_and_prune_with_distillation_options(workdir):
    out = workdir / "w"
    assert main(["quantize", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--out", str(out), "--type", "weight_only"]) == 0
    assert isinstance(load_compressed(out).head.out_proj, WeightOnlyInt8Linear)
    assert read_report(out)["settings"]["quantization_type"] == "weight_only"
    out = workdir / "pd"
    assert main(["prune", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--out", str(out), "--train", str(workdir / "val.csv"),
                 "--fine-tune-steps", "1", "--distillation-alpha", "0.5"]) == 0
    assert read_report(out)["settings"]["distillation_alpha"] == 0.5


def test_export_command_torch_export_format_writes_a_pt2_archive(workdir):
    out = workdir / "e"
    assert main(["export", str(workdir / "model"), "--val", str(workdir / "val.csv"),
                 "--out", str(out), "--format", "torch_export"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["compression_report.json", "model.pt2"]
    report = read_report(out)
    assert report["method"] == "torch_export"
    assert report["extra"]["max_abs_diff"] < 1e-4
    assert ExportedProgramModel(out / "model.pt2").sequence_length == 64
