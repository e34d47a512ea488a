"""Models cast with ``model.to(torch.bfloat16)`` / ``.half()`` run forward and train (issue 19:
the implicit filters' positional features stayed float32 and every matmul failed)."""

from __future__ import annotations

import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForSequenceClassification, HyenaOperator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])]
#: bf16 keeps 8 significant bits: unit roundoff 2^-8 per rounding.
BF16_UNIT = 2.0 ** -8


def tiny_config(**changes) -> HyenaGLTConfig:
    settings = dict(vocab_size=64, d_model=16, n_layers=3, num_heads=2, sequence_length=256,
                    filter_order=8, dropout=0.0, attention_layers=(1,), num_classes=3,
                    max_patch_size=6, alphabet_size=22, use_dynamic_merging=False)
    settings.update(changes)
    return HyenaGLTConfig(**settings)


@pytest.mark.parametrize("device", DEVICES)
def test_bare_operator_runs_in_bfloat16(device):
    torch.manual_seed(0)
    operator = HyenaOperator(d_model=16, l_max=64, filter_order=8).to(device)
    x = torch.randn(2, 64, 16, device=device)
    reference = operator(x)
    out = operator.to(torch.bfloat16)(x.bfloat16())
    assert out.dtype == torch.bfloat16
    # Each output sums d_model products of rounded inputs, gates and weights: a few units of
    # roundoff relative to the output's scale.
    error = (out.float() - reference).abs().max()
    assert error <= 8 * BF16_UNIT * reference.abs().max()


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_model_matches_float32_and_trains(device):
    torch.manual_seed(0)
    model = HyenaGLTForCausalLM(tiny_config()).to(device).eval()
    ids = torch.randint(7, 11, (2, 64), device=device)
    reference = model(ids).logits
    model.to(torch.bfloat16)
    logits = model(ids).logits
    assert logits.dtype == torch.bfloat16
    # 3 global + 2 local blocks, each adding a few bf16 roundings of the residual stream.
    error = (logits.float() - reference).abs().max()
    assert error <= 5 * 8 * BF16_UNIT * reference.abs().max(), error
    model.train()
    loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 and torch.isfinite(
        p.grad.float()).all() for p in model.parameters())


def test_half_and_bfloat16_with_merging_run():
    torch.manual_seed(0)
    ids = torch.randint(7, 11, (2, 48))
    for dtype in (torch.bfloat16, torch.float16):
        model = HyenaGLTForSequenceClassification(tiny_config(use_dynamic_merging=True))
        model.train()(ids)  # calibrates the merging threshold
        out = model.to(dtype).eval()(ids)
        assert out.logits.dtype == dtype and torch.isfinite(out.logits.float()).all()
        assert (out.num_patches < 48).all()
