"""Curriculum plans, crops, BERT masking and the learning-rate schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hyena_glt.errors import ConfigurationError
from hyena_glt.training import CurriculumLearner
from hyena_glt.training.objectives import MASK_TOKEN_ID, batch_generator, crop_items, mask_tokens
from hyena_glt.training.optim import configure_optimizer, warmup_cosine_schedule


def test_tokens_per_step_stay_constant_as_length_grows():
    # HyenaDNA-like: 1k -> 32k with a batch of 256 sequences per step at 1k.
    curriculum = CurriculumLearner([{"max_length": 1024 * 2**i, "epochs": 1} for i in range(6)])
    plan = curriculum.plan(batch_size=32, gradient_accumulation_steps=8)
    assert [(s.micro_batch_size, s.gradient_accumulation_steps) for s in plan] == [
        (32, 8), (16, 8), (8, 8), (4, 8), (2, 8), (1, 8)]
    assert {s.max_length * s.micro_batch_size * s.gradient_accumulation_steps
            for s in plan} == {32 * 8 * 1024}
    longer = CurriculumLearner([{"max_length": 1024, "epochs": 1},
                                {"max_length": 65536, "steps": 10}]).plan(32, 8)
    assert (longer[1].micro_batch_size, longer[1].gradient_accumulation_steps) == (1, 4)
    explicit = CurriculumLearner([{"max_length": 64, "epochs": 1, "batch_size": 3,
                                   "gradient_accumulation_steps": 5}]).plan(32, 8)
    assert (explicit[0].micro_batch_size, explicit[0].gradient_accumulation_steps) == (3, 5)


def test_curriculum_strings_and_errors():
    assert CurriculumLearner.from_string("1024:2, 4096:300s").stages == [
        {"max_length": 1024, "epochs": 2}, {"max_length": 4096, "steps": 300}]
    with pytest.raises(ConfigurationError, match="LENGTH:EPOCHS"):
        CurriculumLearner.from_string("1024-2")
    with pytest.raises(ConfigurationError, match="exactly one of 'epochs' or 'steps'"):
        CurriculumLearner([{"max_length": 64}])
    with pytest.raises(ConfigurationError, match=r"stage 1\.max_length=0"):
        CurriculumLearner([{"max_length": 64, "epochs": 1}, {"max_length": 0, "epochs": 1}])
    with pytest.raises(ConfigurationError, match="unknown key"):
        CurriculumLearner([{"max_len": 64, "epochs": 1}])


def test_crops_keep_per_base_labels_aligned_and_are_reproducible():
    items = [{"input_ids": torch.arange(100), "labels": torch.arange(100) + 1000,
              "weight": torch.tensor(3.0)}]
    first = crop_items(items, 16, batch_generator(0, 1, 2, 3))
    again = crop_items(items, 16, batch_generator(0, 1, 2, 3))
    assert torch.equal(first[0]["input_ids"], again[0]["input_ids"])
    start = int(first[0]["input_ids"][0])
    assert torch.equal(first[0]["input_ids"], torch.arange(start, start + 16))
    assert torch.equal(first[0]["labels"], first[0]["input_ids"] + 1000)
    assert first[0]["weight"] == 3.0
    assert crop_items(items, None, batch_generator(0))[0]["input_ids"].shape == (100,)


def test_bert_masking_rates():
    ids = torch.randint(7, 11, (64, 256))
    mask = torch.ones_like(ids)
    mask[:, 200:] = 0  # padding is never chosen
    masked, labels = mask_tokens(ids, mask, batch_generator(5))
    chosen = labels != -100
    assert not chosen[:, 200:].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert 0.13 < chosen.float().mean() * 256 / 200 < 0.17
    as_mask = (masked == MASK_TOKEN_ID)[chosen].float().mean()
    unchanged = (masked == ids)[chosen].float().mean()  # 10% kept + random picks equal by chance
    assert 0.77 < as_mask < 0.83 and 0.1 < unchanged < 0.2
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_weight_decay_groups_and_warmup_cosine():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    model[1].bias._optim = {"lr": 0.5}  # a module's per-parameter hint
    optimizer = configure_optimizer(model, learning_rate=1.0, weight_decay=0.1,
                                    lr_by_prefix={"2.": 2.0})
    groups = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in optimizer.param_groups}
    assert groups == {(1.0, 0.1): 2, (0.5, 0.0): 1, (2.0, 0.0): 2}
    schedule = warmup_cosine_schedule(optimizer, warmup_steps=4, total_steps=14,
                                      min_lr_ratio=0.1)
    lrs = []
    for _ in range(16):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert lrs[14:] == pytest.approx([0.1, 0.1])
