"""AttentionAnalyzer: attention maps of the striped stack, Hyena impulse responses, boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.errors import ModelError
from hyena_glt.evaluation import AttentionAnalyzer
from hyena_glt.model import HyenaGLTForSequenceClassification

SEQUENCES = ["ACGTACGTACGTTTGACCA", "GGGCCCAAATTT"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HyenaGLTForSequenceClassification(HyenaGLTConfig(
        vocab_size=64, d_model=16, n_layers=3, num_heads=2, sequence_length=64,
        filter_order=8, dropout=0.0, attention_layers=(0, 2), max_patch_size=4,
        merge_ratio=0.5))


def test_maps_of_every_layer_type(model):
    maps = AttentionAnalyzer(model).get_attention_maps(SEQUENCES)
    assert list(maps.attentions) == ["global_stack.layers.0", "global_stack.layers.2"]
    batch, length = 2, len(SEQUENCES[0])
    boundaries = maps.patch_boundaries
    assert boundaries.shape == (batch, length) and boundaries[:, 0].all()
    num_patches = int(boundaries[0].sum())
    for weights in maps.attentions.values():
        assert weights.shape[:2] == (batch, 2) and weights.shape[2] == weights.shape[3]
        assert weights.shape[2] >= num_patches
        # Each query's weights over the first sequence's real patches sum to one (softmax).
        np.testing.assert_allclose(weights[0, :, :num_patches, :].sum(-1), 1, atol=1e-5)
    hyena_names = {"backbone.local_encoder.0.mixer", "backbone.global_stack.layers.1.mixer",
                   "backbone.local_decoder.0.mixer"}
    assert set(maps.hyena_filters) == hyena_names
    operator = model.backbone.global_stack.layers[1].mixer
    expected = operator.filter(length).detach().numpy()
    np.testing.assert_array_equal(maps.hyena_filters["backbone.global_stack.layers.1.mixer"],
                                  expected)
    assert expected.shape == (1, 16, length)  # order 2: one long filter of d_model channels
    np.testing.assert_array_equal(maps.attention_mask.sum(1), [19, 12])
    heatmap = AttentionAnalyzer.attention_figure(maps, "global_stack.layers.0")
    np.testing.assert_allclose(heatmap.data[0].z,
                               maps.attentions["global_stack.layers.0"][0].mean(0))
    lines = AttentionAnalyzer.filter_figure(maps, max_lag=5).data
    assert {line.name for line in lines} == hyena_names and all(len(line.y) == 5 for line in lines)


def test_training_mode_is_restored_and_ids_accepted(model):
    model.train()
    ids = torch.randint(7, 11, (1, 16))
    maps = AttentionAnalyzer(model).get_attention_maps(ids)
    assert model.training
    assert maps.patch_boundaries.shape == (1, 16)
    model.eval()


def test_model_without_striped_stack_is_refused():
    with pytest.raises(ModelError, match="no striped global stack"):
        AttentionAnalyzer(torch.nn.Linear(2, 2))._attention_layer_names()
