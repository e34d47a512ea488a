"""BLT dynamic merging: patch rules, pooling, un-merging, calibration, causality."""

from __future__ import annotations

import pytest
import torch

from hyena_glt.model import DynamicMergingLayer, HyenaDynamicLayer
from hyena_glt.model.merging import patch_starts


def _reference_starts(candidates: list[bool], min_size: int, max_size: int) -> list[bool]:
    """The left-to-right rule, one position at a time (the definition patch_starts scans)."""
    starts, distance = [True], 0
    for proposal in candidates:
        grown = distance + 1
        close = grown >= max_size or (proposal and grown >= min_size)
        distance = 0 if close else grown
        starts.append(close)
    return starts


@pytest.mark.parametrize("min_size,max_size", [(1, 4), (1, 1000), (2, 5), (3, 3), (4, 16)])
def test_patch_starts_matches_sequential_rule(min_size, max_size):
    generator = torch.Generator().manual_seed(min_size * 100 + max_size)
    candidates = torch.rand(4, 77, generator=generator) < 0.4
    got = patch_starts(candidates, min_size, max_size)
    for row in range(4):
        expected = _reference_starts(candidates[row].tolist(), min_size, max_size)
        assert got[row].tolist() == expected


def _controlled_layer(causal: bool = True) -> DynamicMergingLayer:
    """Learned mode whose score is feature 0 of the state: boundaries are set by hand."""
    layer = DynamicMergingLayer(d_model=4, merge_ratio=0.5, threshold=0.0, mode="learned",
                                max_patch_size=8, causal=causal).eval()
    with torch.no_grad():
        layer.boundary_head.weight.zero_()
        layer.boundary_head.weight[0, 0] = 1.0
        layer.boundary_head.bias.fill_(-0.5)
    return layer


def test_pooling_and_unmerging_exact_values():
    hidden = torch.arange(6 * 4, dtype=torch.float32).reshape(1, 6, 4)
    hidden[..., 0] = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])  # close after t=1 and t=4
    merged = _controlled_layer()(hidden)
    assert merged.boundaries.tolist() == [[True, False, True, False, False, True]]
    assert merged.num_patches.tolist() == [3]
    torch.testing.assert_close(merged.patches[0, 0], hidden[0, :2].mean(0))
    torch.testing.assert_close(merged.patches[0, 1], hidden[0, 2:5].mean(0))
    torch.testing.assert_close(merged.patches[0, 2], hidden[0, 5])
    # Causal: t reads its own patch only where that patch closes at t, else the previous one.
    assert merged.read_index.tolist() == [[-1, 0, 0, 0, 1, 1]]
    patch_states = torch.tensor([[[1.0] * 4, [2.0] * 4, [3.0] * 4]])
    unmerged = DynamicMergingLayer.unmerge(patch_states, merged)
    assert unmerged.shape == hidden.shape
    assert unmerged[0, :, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    bidirectional = _controlled_layer(causal=False)(hidden)
    assert bidirectional.read_index.tolist() == [[0, 0, 1, 1, 1, 2]]


def test_padding_is_excluded_from_patches():
    hidden = torch.randn(2, 6, 4)
    hidden[..., 0] = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    merged = _controlled_layer()(hidden, mask)
    assert merged.num_patches.tolist() == [3, 2]
    assert merged.boundaries[1].tolist() == [True, False, True, False, False, False]
    assert merged.patch_mask.tolist() == [[True, True, True], [True, True, False]]
    torch.testing.assert_close(merged.patches[1, 1], hidden[1, 2])


def test_merge_ratio_zero_keeps_every_position():
    hidden = torch.randn(2, 9, 8)
    layer = DynamicMergingLayer(d_model=8, merge_ratio=0.0, threshold=0.1).eval()
    merged = layer(hidden)
    assert merged.boundaries.all() and merged.num_patches.tolist() == [9, 9]
    torch.testing.assert_close(merged.patches, hidden)
    torch.testing.assert_close(layer.unmerge(merged.patches, merged), hidden)


@pytest.mark.parametrize("mode", ["entropy", "monotonic", "learned"])
def test_calibrated_threshold_reaches_target_ratio_and_respects_sizes(mode):
    torch.manual_seed(0)
    layer = DynamicMergingLayer(d_model=16, merge_ratio=0.75, mode=mode,
                                min_patch_size=2, max_patch_size=6, momentum=0.5)
    hidden = torch.randn(4, 200, 16)
    layer.train()
    for _ in range(5):
        layer(hidden)
    layer.eval()
    merged = layer(hidden)
    mean_patch = 200 / merged.num_patches.float().mean()
    assert 3.0 <= mean_patch <= 5.0  # target 1 / (1 - 0.75) = 4
    for row in merged.boundaries:
        starts = torch.nonzero(row).flatten().tolist() + [200]
        sizes = [b - a for a, b in zip(starts[:-1], starts[1:], strict=True)]
        assert max(sizes) <= 6 and min(sizes[:-1]) >= 2  # the last patch is cut by the end
    again = layer(hidden)
    assert torch.equal(again.boundaries, merged.boundaries)  # deterministic at inference


def test_api_snippets_and_dynamic_layer_causality():
    merge_layer = DynamicMergingLayer(d_model=32, merge_ratio=0.5, threshold=0.1)
    assert merge_layer(torch.randn(1, 20, 32)).patches.shape[-1] == 32
    torch.manual_seed(0)
    hyena_layer = HyenaDynamicLayer(d_model=32, l_max=128, merge_ratio=0.5)
    ids = torch.randint(7, 11, (2, 128))
    x = torch.randn(2, 128, 32)
    hyena_layer.train()
    hyena_layer(x, input_ids=ids)  # calibrates the threshold
    hyena_layer.eval()
    out = hyena_layer(x)
    assert out.hidden_states.shape == (2, 128, 32)  # un-merge returns the input length
    assert (out.num_patches < 100).all() and out.boundaries[:, 0].all()
    t = 60
    y = x.clone()
    y[:, t + 1:] = torch.randn_like(y[:, t + 1:])
    out_y = hyena_layer(y)
    torch.testing.assert_close(out.hidden_states[:, : t + 1], out_y.hidden_states[:, : t + 1],
                               atol=1e-5, rtol=0)
    assert torch.equal(out.boundaries[:, : t + 1], out_y.boundaries[:, : t + 1])
    assert not torch.equal(out.boundaries, out_y.boundaries)  # the perturbation mattered


def test_learned_boundaries_get_gradients_and_aux_loss_trains_entropy_head():
    torch.manual_seed(0)
    for mode in ("learned", "entropy"):
        layer = HyenaDynamicLayer(d_model=16, l_max=64, merge_ratio=0.5, filter_order=8,
                                  mode=mode)
        ids = torch.randint(7, 11, (2, 64))
        out = layer(torch.randn(2, 64, 16), input_ids=ids)
        loss = out.hidden_states.square().mean()
        if mode == "entropy":
            assert out.aux_loss is not None and out.aux_loss > 0
            loss = loss + out.aux_loss
        loss.backward()
        missing = [n for n, p in layer.named_parameters() if p.grad is None]
        assert missing == []


def test_a_fresh_layer_merges_merge_ratio_evenly_and_causally():
    hidden = torch.randn(2, 100, 8)
    for ratio, patches in ((0.5, 50), (0.75, 25), (0.3, 70)):
        layer = DynamicMergingLayer(d_model=8, merge_ratio=ratio).eval()
        merged = layer(hidden)
        assert merged.num_patches.tolist() == [patches, patches]
        assert torch.equal(layer(hidden[:, :40]).boundaries, merged.boundaries[:, :40])


def test_a_fixed_threshold_is_never_overwritten():
    torch.manual_seed(0)
    layer = DynamicMergingLayer(d_model=8, merge_ratio=0.5, threshold=3.4).train()
    ids = torch.randint(7, 11, (2, 60))
    hidden = torch.randn(2, 60, 8)
    for _ in range(3):
        merged = layer(hidden, input_ids=ids)
    assert layer.threshold == torch.tensor(3.4) and layer.calibration_steps.item() == 0
    scores, _ = layer.boundary_scores(hidden)  # entropies near log(33) = 3.50 nats
    expected = patch_starts(scores > 3.4, 1, 16)[:, :60]
    assert torch.equal(merged.boundaries, expected)
    assert 0 < merged.num_patches.sum() < 120  # some scores on each side of 3.4


def test_min_patch_size_does_not_inflate_the_ratio():
    with pytest.raises(ValueError, match="merge_ratio=0.5 asks for patches of 2 positions"):
        DynamicMergingLayer(d_model=8, merge_ratio=0.5, min_patch_size=3)
    torch.manual_seed(0)
    layer = DynamicMergingLayer(d_model=16, merge_ratio=0.6, min_patch_size=2, mode="learned",
                                momentum=0.5).train()
    hidden = torch.randn(4, 400, 16)
    for _ in range(30):
        layer(hidden)
    merged = layer.eval()(hidden)
    achieved = 1 - merged.num_patches.sum().item() / hidden.shape[:2].numel()
    # One patch more or less per 100 positions is within a quantile step of the target.
    assert abs(achieved - 0.6) <= 0.01, achieved
