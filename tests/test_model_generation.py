"""Sampling DNA continuations: greedy is the argmax of a full forward at every step, seeded
sampling repeats, top-k/top-p keep exactly the tokens they say, special tokens never appear."""

from __future__ import annotations

import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.errors import ConfigurationError, ModelError
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.model.generation import filter_logits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm() -> HyenaGLTForCausalLM:
    torch.manual_seed(0)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, num_heads=2,
                            sequence_length=128, filter_order=8, dropout=0.0,
                            attention_layers=(1,), alphabet_size=22, max_patch_size=6)
    model = HyenaGLTForCausalLM(config)
    model.train()(torch.randint(7, 11, (2, 64)))  # calibrate merging
    return model.eval()


def test_greedy_is_the_argmax_of_each_full_forward(lm):
    prompt = torch.randint(7, 11, (2, 12), generator=torch.Generator().manual_seed(1))
    out = lm.generate(prompt, max_new_tokens=6, temperature=0)
    assert out.shape == (2, 18) and torch.equal(out[:, :12], prompt)
    for step in range(12, 18):
        logits = lm(out[:, :step]).logits[:, -1]
        logits[:, :7] = float("-inf")  # special tokens are never produced
        assert torch.equal(out[:, step], logits.argmax(-1))
    assert torch.equal(lm.generate(prompt, 6, top_k=1, seed=5), out)  # top-1 = greedy


def test_seeded_sampling_repeats_and_stays_in_the_alphabet(lm):
    prompt = torch.full((1, 8), 7)
    first = lm.generate(prompt, max_new_tokens=20, temperature=1.5, seed=3)
    assert torch.equal(first, lm.generate(prompt, max_new_tokens=20, temperature=1.5, seed=3))
    assert not torch.equal(first, lm.generate(prompt, max_new_tokens=20, temperature=1.5,
                                              seed=4))
    assert ((first >= 7) & (first < 22)).all()
    assert lm.training is False


def test_top_k_and_top_p_keep_exactly_their_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    keep = torch.isfinite
    assert keep(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    # nucleus 0.7: 0.5 alone is short of it, 0.5 + 0.3 reaches it
    assert keep(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert keep(filter_logits(logits, top_p=0.45)).tolist() == [[True, False, False, False]]
    assert keep(filter_logits(logits, top_p=0.01)).tolist() == [[True, False, False, False]]
    shuffled = logits[:, [2, 0, 3, 1]]
    assert keep(filter_logits(shuffled, top_p=0.7)).tolist() == [[False, True, False, True]]


def test_bad_settings_are_refused(lm):
    prompt = torch.full((1, 4), 7)
    with pytest.raises(ConfigurationError, match="top_p"):
        lm.generate(prompt, 2, top_p=1.5)
    with pytest.raises(ConfigurationError, match="temperature"):
        lm.generate(prompt, 2, temperature=-1)
    bidirectional = HyenaGLTForCausalLM(lm.config.replace(bidirectional=True))
    with pytest.raises(ModelError, match="bidirectional"):
        bidirectional.generate(prompt, 2)


def test_chunked_logits_equal_the_full_forward_when_the_context_covers_the_prefix(lm):
    from hyena_glt.model import chunked_logits

    ids = torch.randint(7, 11, (2, 100), generator=torch.Generator().manual_seed(2))
    full = lm(ids).logits
    exact = chunked_logits(lm, ids, chunk=30, context=100)
    assert exact.shape == full.shape
    torch.testing.assert_close(exact, full, atol=1e-5, rtol=1e-5)
    short = chunked_logits(lm, ids, chunk=30, context=10)
    torch.testing.assert_close(short[:, :30], full[:, :30], atol=1e-5, rtol=1e-5)  # 1st window
    assert (short[:, 30:] - full[:, 30:]).abs().max() > 1e-4  # later ones lost their far past
    with pytest.raises(ConfigurationError, match="chunk"):
        chunked_logits(lm, ids, chunk=0)
