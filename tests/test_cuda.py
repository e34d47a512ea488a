"""The CUDA paths: the same weights give the same outputs on the GPU as on the CPU, the bf16
autocast path stays close to float32, and the trainer trains on the GPU under bf16.

Skipped without a CUDA device (CI has none); the CPU fallback of ``device="auto"`` is tested in
test_training_distributed.py. Data: the SARS-CoV-2 genome bundled in resources/, so the tests
need no shared/ directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.datasets import GenomicDataset
from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForSequenceClassification
from hyena_glt.model.fftconv import fft_conv
from hyena_glt.training import CurriculumLearner, HyenaGLTTrainer, seed_everything

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

GENOME = Path(__file__).resolve().parents[1] / "resources/genomes/NC_045512.2.fa.gz"


def small_config(**changes) -> HyenaGLTConfig:
    base = dict(vocab_size=256, d_model=32, n_layers=2, sequence_length=1024, num_heads=2,
                attention_layers=(1,), batch_size=4, num_epochs=1, warmup_steps=2,
                learning_rate=3e-3, dropout=0.0, seed=0)
    return HyenaGLTConfig(**{**base, **changes})


def test_fft_conv_on_cuda_matches_cpu_and_keeps_float32_under_autocast():
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(2, 8, 3000, generator=generator)
    k = torch.randn(8, 3000, generator=generator) / 3000
    expected = fft_conv(u, k)
    on_gpu = fft_conv(u.cuda(), k.cuda())
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=1e-4, atol=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        under_autocast = fft_conv(u.cuda(), k.cuda())
    assert under_autocast.dtype == torch.float32  # the FFT is not demoted to bf16
    torch.testing.assert_close(under_autocast.cpu(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("merging", [False, True])
def test_classifier_gives_the_same_logits_on_cuda_and_close_ones_in_bf16(merging):
    seed_everything(0)
    model = HyenaGLTForSequenceClassification(small_config(use_dynamic_merging=merging)).eval()
    ids = torch.randint(7, 11, (4, 512), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2:, 400:] = 0
    with torch.no_grad():
        expected = model(ids, mask).logits
        model.cuda()
        on_gpu = model(ids.cuda(), mask.cuda()).logits.float().cpu()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = model(ids.cuda(), mask.cuda()).logits.float().cpu()
    torch.testing.assert_close(on_gpu, expected, rtol=1e-3, atol=1e-4)
    # bf16 keeps ~3 significant digits; the logits' scale sets the tolerance.
    assert (bf16 - expected).abs().max() <= 0.05 * expected.abs().max() + 1e-2


def test_trainer_pretrains_on_cuda_under_bf16_and_saves_cpu_loadable_weights(tmp_path):
    from hyena_glt.ingest import ingest_fasta

    shards = tmp_path / "windows"
    ingest_fasta([GENOME], shards, window=512)
    dataset = GenomicDataset(data_path=shards, max_length=None, padding=None)
    config = small_config(batch_size=8)
    seed_everything(0)
    model = HyenaGLTForCausalLM(config)
    curriculum = CurriculumLearner([{"max_length": 256, "steps": 15},
                                    {"max_length": 512, "steps": 15}])
    trainer = HyenaGLTTrainer(model, config, dataset, None, None, tmp_path / "run",
                              curriculum=curriculum, device="cuda", log_steps=5,
                              show_progress=False)
    assert trainer.device.type == "cuda"
    result = trainer.train()
    losses = [row["loss"] for row in result["history"] if "loss" in row]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.1  # from ~log(22) towards DNA's ~1.4 nats
    saved = HyenaGLTForCausalLM.from_pretrained(tmp_path / "run" / "model").eval()
    assert next(saved.parameters()).device.type == "cpu"
    ids = dataset[0]["input_ids"][None, :256]
    with torch.no_grad():
        on_cpu = saved(ids).logits
        on_gpu = model.eval().float()(ids.cuda()).logits.cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
