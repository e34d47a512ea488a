"""Hyena operator, FFT convolution, attention and the striped stack."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hyena_glt.model import (
    HyenaOperator,
    MultiHeadAttention,
    StripedHyenaOperator,
    StrippedHyenaOperator,
    fft_conv,
)
from hyena_glt.model.blocks import AttentionBlock, HyenaBlock
from hyena_glt.model.fftconv import fast_fft_size


def _is_5_smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def test_fast_fft_size_is_smallest_5_smooth():
    for minimum in range(1, 3000):
        size = fast_fft_size(minimum)
        assert size >= minimum and _is_5_smooth(size)
        assert not any(_is_5_smooth(m) for m in range(minimum, size))


@pytest.mark.parametrize("length", [1, 7, 64, 100, 251])
def test_fft_conv_equals_direct_causal_convolution(length):
    torch.manual_seed(length)
    u, k = torch.randn(2, 3, length), torch.randn(3, length)
    # conv1d is a cross-correlation: flip the kernel and left-pad for y[t] = sum_j k[j] u[t-j].
    direct = F.conv1d(F.pad(u, (length - 1, 0)), k.flip(-1)[:, None, :], groups=3)
    torch.testing.assert_close(fft_conv(u, k), direct, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("length", [5, 64, 99])
def test_fft_conv_equals_explicit_sum_bidirectional(length):
    torch.manual_seed(length)
    u, k, k_rev = torch.randn(2, 3, length), torch.randn(3, length), torch.randn(3, length)
    t = torch.arange(length)
    lag = t[:, None] - t[None, :]  # lag[t, s] = t - s
    toeplitz = torch.where(lag >= 0, k[:, lag.clamp(min=0)], k_rev[:, (-lag - 1).clamp(min=0)])
    direct = torch.einsum("cts,bcs->bct", toeplitz, u)
    torch.testing.assert_close(fft_conv(u, k, k_rev), direct, atol=1e-4, rtol=1e-4)


def test_fft_conv_keeps_dtype_and_computes_in_float32():
    u, k = torch.randn(1, 2, 50).to(torch.bfloat16), torch.randn(2, 50)
    out = fft_conv(u, k)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), fft_conv(u.float(), k), atol=0.05, rtol=0.02)


@pytest.mark.parametrize("order", [2, 3])
def test_hyena_operator_is_causal(order):
    torch.manual_seed(0)
    op = HyenaOperator(d_model=16, l_max=64, order=order, filter_order=16).eval()
    x = torch.randn(2, 64, 16)
    t = 30
    y = x.clone()
    y[:, t + 1:] = torch.randn_like(y[:, t + 1:])
    out_x, out_y = op(x), op(y)
    torch.testing.assert_close(out_x[:, : t + 1], out_y[:, : t + 1], atol=1e-5, rtol=0)
    assert (out_x[:, t + 1:] - out_y[:, t + 1:]).abs().max() > 1e-2


def test_bidirectional_hyena_sees_both_sides_and_ignores_padding():
    torch.manual_seed(0)
    op = HyenaOperator(d_model=16, l_max=64, order=2, filter_order=16, bidirectional=True).eval()
    x = torch.randn(1, 40, 16)
    y = x.clone()
    y[:, 30:] += 1.0
    assert (op(x)[:, :30] - op(y)[:, :30]).abs().max() > 1e-3  # the past sees the future
    padded = torch.cat([x, torch.randn(1, 24, 16)], dim=1)
    mask = (torch.arange(64) < 40).long()[None]
    torch.testing.assert_close(op(padded, mask)[:, :40], op(x), atol=1e-5, rtol=1e-4)


def test_hyena_runs_beyond_l_max_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    op = HyenaOperator(d_model=16, l_max=32, order=3, filter_order=8)
    out = op(torch.randn(2, 80, 16))
    assert out.shape == (2, 80, 16)
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in op.parameters())


def test_attention_is_causal_masks_padding_and_returns_weights():
    torch.manual_seed(0)
    attn = MultiHeadAttention(d_model=16, num_heads=4).eval()
    x = torch.randn(2, 12, 16)
    y = x.clone()
    y[:, 8:] = torch.randn_like(y[:, 8:])
    torch.testing.assert_close(attn(x)[0][:, :8], attn(y)[0][:, :8], atol=1e-6, rtol=0)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    fused, _ = attn(x, mask)
    explicit, weights = attn(x, mask, output_attentions=True)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert weights.shape == (2, 4, 12, 12)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 12))
    assert weights.triu(1).abs().max() == 0  # causal
    assert weights[1, :, :7, 7:].abs().max() == 0  # padded keys are never attended
    torch.testing.assert_close(fused[1, :7], attn(x[1:, :7])[0][0], atol=1e-5, rtol=1e-5)


def test_rotary_attention_scores_depend_on_relative_position_only():
    torch.manual_seed(0)
    attn = MultiHeadAttention(d_model=8, num_heads=1)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    seq_q = q.expand(1, 1, 20, 8)
    seq_k = k.expand(1, 1, 20, 8)
    scores = attn.rotary(seq_q) @ attn.rotary(seq_k).transpose(-1, -2)  # (1, 1, 20, 20)
    torch.testing.assert_close(scores[0, 0, 5, 2], scores[0, 0, 15, 12], atol=1e-4, rtol=1e-4)


def test_api_operator_snippets_and_striping():
    hyena_op = HyenaOperator(d_model=32, l_max=128, order=2, filter_order=64)
    assert hyena_op(torch.randn(1, 128, 32)).shape == (1, 128, 32)
    stripped_op = StrippedHyenaOperator(d_model=32, l_max=128, order=2, num_heads=8)
    assert StripedHyenaOperator is StrippedHyenaOperator
    assert stripped_op(torch.randn(2, 100, 32)).shape == (2, 100, 32)
    stack = StrippedHyenaOperator(d_model=16, l_max=64, num_heads=2, n_layers=6,
                                  attention_layers=(2, 5))
    kinds = [type(layer) for layer in stack.layers]
    assert kinds == [HyenaBlock, HyenaBlock, AttentionBlock, HyenaBlock, HyenaBlock,
                     AttentionBlock]
    hidden, attentions = [], []
    stack(torch.randn(1, 10, 16), hidden_states=hidden, attentions=attentions)
    assert len(hidden) == 6 and [a.shape for a in attentions] == [(1, 2, 10, 10)] * 2
    with pytest.raises(ValueError, match="attention_layers"):
        StrippedHyenaOperator(d_model=16, l_max=64, num_heads=2, n_layers=2,
                              attention_layers=(3,))


def test_striped_stack_is_causal():
    torch.manual_seed(0)
    stack = StrippedHyenaOperator(d_model=16, l_max=64, num_heads=2, n_layers=3,
                                  attention_layers=(1,)).eval()
    x = torch.randn(1, 50, 16)
    y = x.clone()
    y[:, 21:] = torch.randn_like(y[:, 21:])
    torch.testing.assert_close(stack(x)[:, :21], stack(y)[:, :21], atol=1e-5, rtol=0)


def test_bf16_autocast_forward_and_backward():
    from hyena_glt.config import HyenaGLTConfig
    from hyena_glt.model import HyenaGLTForCausalLM

    torch.manual_seed(0)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, num_heads=2, filter_order=8,
                            sequence_length=64, dropout=0.0, attention_layers=(1,))
    model = HyenaGLTForCausalLM(config)
    ids = torch.randint(7, 11, (2, 64))
    reference = model(ids, labels=ids).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and abs(loss.item() - reference.item()) < 0.1
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
