"""Backbone and task models: API snippets, causality, merging equivalence, gradients,
save/load, padding invariance, reverse-complement averaging, log-likelihoods."""

from __future__ import annotations

import gzip
import warnings

import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError, HyenaGLTWarning, ModelError
from hyena_glt.model import (
    HyenaGLTForCausalLM,
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
    HyenaGLTForVariantEffect,
    HyenaGLTModel,
    RegressionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    load_backbone,
)

TASK_MODELS = [HyenaGLTForSequenceClassification, HyenaGLTForTokenClassification,
               HyenaGLTForRegression, HyenaGLTForCausalLM]


def tiny_config(**changes) -> HyenaGLTConfig:
    settings = dict(vocab_size=64, d_model=16, n_layers=3, num_heads=2, sequence_length=256,
                    filter_order=8, dropout=0.0, attention_layers=(1,), num_classes=3,
                    max_patch_size=6, merge_ratio=0.5)
    settings.update(changes)
    return HyenaGLTConfig(**settings)


@pytest.fixture(scope="module")
def promoters(shared_data):
    """Real 251-nt promoter sequences (Genomic Benchmarks human_nontata_promoters)."""
    path = shared_data / "genomic_benchmarks" / "human_nontata_promoters" / "test.csv.gz"
    with gzip.open(path, "rt") as handle:
        rows = [line.split(",")[0] for line, _ in zip(handle, range(7), strict=False)][1:]
    return DNATokenizer().batch_encode(rows)["input_ids"]


def calibrated(model, input_ids):
    """Eval-mode model whose merging threshold was calibrated (train mode) on ids like
    ``input_ids`` (a shuffled copy, so no evaluated score sits exactly on the threshold)."""
    model.train()
    generator = torch.Generator().manual_seed(1)
    shuffled = input_ids[:, torch.randperm(input_ids.shape[1], generator=generator)]
    with torch.no_grad():
        model(shuffled)
    return model.eval()


def test_api_model_snippets_run_as_written(promoters):
    config = tiny_config()
    input_ids, labels = promoters[:2, :64], torch.tensor([0, 2])
    attention_mask = torch.ones_like(input_ids)
    model = HyenaGLTModel(config)
    outputs = model(input_ids, attention_mask=attention_mask)
    assert outputs.last_hidden_state.shape == (2, 64, 16)
    assert outputs.patch_boundaries.shape == (2, 64) and outputs.num_patches.shape == (2,)
    model = HyenaGLTForSequenceClassification(config)
    logits = model(input_ids, labels=labels)
    assert logits.logits.shape == (2, 3) and logits.loss.ndim == 0
    model = HyenaGLTForTokenClassification(config)
    logits = model(input_ids, labels=torch.zeros(2, 64, dtype=torch.long))
    assert logits.logits.shape == (2, 64, 3)
    model = HyenaGLTForRegression(config)
    predictions = model(input_ids, labels=torch.randn(2))
    assert predictions.logits.shape == (2, 1) and predictions.loss is not None
    outputs = HyenaGLTForCausalLM(config)(input_ids)
    assert outputs.logits.shape == (2, 64, config.alphabet_size) and outputs.loss is None
    hidden = torch.randn(2, 10, 32)
    assert SequenceClassificationHead(d_model=32, num_classes=10, dropout=0.1)(
        hidden).shape == (2, 10)
    assert TokenClassificationHead(d_model=32, num_classes=5, dropout=0.1)(
        hidden).shape == (2, 10, 5)
    assert RegressionHead(d_model=32, output_dim=1, dropout=0.1)(hidden).shape == (2, 1)


@pytest.mark.parametrize("merging", [False, True])
def test_backbone_and_causal_lm_are_causal(merging):
    torch.manual_seed(0)
    config = tiny_config(use_dynamic_merging=merging, min_patch_size=2)
    ids = torch.randint(7, 12, (2, 120))
    t = 70
    perturbed = ids.clone()
    perturbed[:, t + 1:] = torch.randint(7, 12, (2, 120 - t - 1))
    for cls in (HyenaGLTModel, HyenaGLTForCausalLM):
        model = calibrated(cls(config), ids)
        a, b = model(ids), model(perturbed)
        a = a.last_hidden_state if cls is HyenaGLTModel else a.logits
        b = b.last_hidden_state if cls is HyenaGLTModel else b.logits
        torch.testing.assert_close(a[:, : t + 1], b[:, : t + 1], atol=1e-5, rtol=0)
        assert (a[:, t + 1:] - b[:, t + 1:]).abs().max() > 1e-3
    if merging:
        assert (model(ids).num_patches < 90).all()  # merging really happened


def test_merge_ratio_zero_reproduces_unmerged_path():
    torch.manual_seed(0)
    plain = HyenaGLTModel(tiny_config(use_dynamic_merging=False)).eval()
    merged = HyenaGLTModel(tiny_config(use_dynamic_merging=True, merge_ratio=0.0)).eval()
    missing, unexpected = merged.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all(key.startswith("merging.") for key in missing)
    ids = torch.randint(7, 12, (2, 90))
    out_plain, out_merged = plain(ids), merged(ids)
    torch.testing.assert_close(out_merged.last_hidden_state, out_plain.last_hidden_state,
                               atol=1e-6, rtol=1e-6)
    assert out_merged.patch_boundaries.all() and out_plain.patch_boundaries is None


@pytest.mark.parametrize("cls", TASK_MODELS)
@pytest.mark.parametrize("mode", ["entropy", "learned"])
def test_gradients_reach_every_parameter(cls, mode):
    torch.manual_seed(0)
    model = cls(tiny_config(merge_mode=mode, local_decoder_layers=1)).train()
    ids = torch.randint(7, 12, (2, 48))
    labels = {HyenaGLTForSequenceClassification: torch.tensor([0, 1]),
              HyenaGLTForTokenClassification: torch.randint(0, 3, (2, 48)),
              HyenaGLTForRegression: torch.randn(2, 1), HyenaGLTForCausalLM: ids}[cls]
    model(ids, labels=labels).loss.backward()
    missing = [name for name, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("cls", TASK_MODELS + [HyenaGLTModel])
def test_save_load_round_trip_is_identical(cls, tmp_path):
    torch.manual_seed(0)
    ids = torch.randint(7, 12, (2, 40))
    model = calibrated(cls(tiny_config()), ids)
    model.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json",
                                                                        "model.safetensors"]
    loaded = cls.from_pretrained(tmp_path / "model").eval()
    a, b = model(ids), loaded(ids)
    key = "last_hidden_state" if cls is HyenaGLTModel else "logits"
    assert torch.equal(getattr(a, key), getattr(b, key))
    assert loaded.config.extra["architecture"] == cls.__name__


def test_attention_pooling_learns_saves_and_is_checked(tmp_path):
    torch.manual_seed(0)
    model = HyenaGLTForSequenceClassification(tiny_config(pooling="attention")).train()
    ids = torch.randint(7, 12, (2, 48))
    model(ids, labels=torch.tensor([0, 1])).loss.backward()
    pool = model.head.attention_pool
    assert pool is not None and all(p.grad.abs().sum() > 0 for p in pool.parameters())
    model.eval().save_pretrained(tmp_path / "clf")
    loaded = HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    assert loaded.config.pooling == "attention"
    assert torch.equal(loaded(ids).logits, model(ids).logits)
    assert HyenaGLTForSequenceClassification(tiny_config()).head.attention_pool is None
    with pytest.raises(ConfigurationError, match=r"pooling='max' is invalid"):
        tiny_config(pooling="max")


def test_strict_loading_names_bad_keys_and_shapes(tmp_path):
    model = HyenaGLTForSequenceClassification(tiny_config())
    model.save_pretrained(tmp_path / "clf")
    with pytest.raises(ModelError, match=r"unexpected keys: backbone\.merging\."):
        HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "clf",
                                                          use_dynamic_merging=False)
    with pytest.raises(ModelError, match=r"shape mismatch: .*head\.out_proj\.weight"):
        HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "clf", num_classes=5)
    with pytest.raises(ModelError, match="holds a HyenaGLTForSequenceClassification"):
        HyenaGLTForCausalLM.from_pretrained(tmp_path / "clf")
    with pytest.raises(ModelError, match="no weights file"):
        HyenaGLTModel.from_pretrained(tmp_path / "missing")
    relaxed = HyenaGLTForSequenceClassification.from_pretrained(
        tmp_path / "clf", strict=False, use_dynamic_merging=False)
    assert relaxed.backbone.merging is None


def test_classifier_starts_from_a_causal_lm_backbone(tmp_path):
    torch.manual_seed(0)
    lm = HyenaGLTForCausalLM(tiny_config())
    lm.save_pretrained(tmp_path / "lm")
    clf = HyenaGLTForSequenceClassification.from_pretrained(tmp_path / "lm", backbone_only=True,
                                                            num_classes=4)
    assert clf.config.num_classes == 4
    for key, value in lm.backbone.state_dict().items():
        assert torch.equal(clf.backbone.state_dict()[key], value), key
    other = load_backbone(HyenaGLTForTokenClassification(tiny_config()), tmp_path / "lm")
    assert torch.equal(other.backbone.embeddings.token.weight, lm.backbone.embeddings.token.weight)
    bare = HyenaGLTModel.from_pretrained(tmp_path / "lm", backbone_only=True)
    assert torch.equal(bare.final_norm.weight, lm.backbone.final_norm.weight)
    unmerged = HyenaGLTForTokenClassification.from_pretrained(
        tmp_path / "lm", backbone_only=True, use_dynamic_merging=False)  # strict, no merging
    assert unmerged.backbone.merging is None
    assert torch.equal(unmerged.backbone.final_norm.weight, lm.backbone.final_norm.weight)


@pytest.mark.parametrize(("bidirectional", "pooling"),
                         [(False, "mean"), (True, "mean"), (True, "attention")])
def test_padding_does_not_change_a_sequence_result(promoters, bidirectional, pooling):
    torch.manual_seed(0)
    config = tiny_config(bidirectional=bidirectional, rc_average=bidirectional, pooling=pooling)
    short, long = promoters[0, :150], promoters[1, :230]
    batch = torch.zeros(2, 230, dtype=torch.long)
    batch[0, :150], batch[1] = short, long
    mask = (batch != 0).long()
    clf = calibrated(HyenaGLTForSequenceClassification(config), batch)
    alone = clf(short[None])
    padded = clf(batch, attention_mask=mask)
    torch.testing.assert_close(padded.logits[0], alone.logits[0], atol=1e-5, rtol=1e-4)
    assert torch.equal(padded.patch_boundaries[0, :150], alone.patch_boundaries[0])
    assert not padded.patch_boundaries[0, 150:].any()
    tagger = calibrated(HyenaGLTForTokenClassification(config), batch)
    torch.testing.assert_close(tagger(batch, mask).logits[0, :150], tagger(short[None]).logits[0],
                               atol=1e-5, rtol=1e-4)


def test_rc_averaging_is_reverse_complement_equivariant(promoters):
    torch.manual_seed(0)
    config = tiny_config(rc_average=True, bidirectional=True)
    tokenizer = DNATokenizer()
    ids = promoters[:2, :100]
    rc_ids = tokenizer.reverse_complement_ids(ids)
    clf = calibrated(HyenaGLTForSequenceClassification(config), ids)
    torch.testing.assert_close(clf(ids).logits, clf(rc_ids).logits, atol=1e-5, rtol=1e-4)
    tagger = calibrated(HyenaGLTForTokenClassification(config), ids)
    torch.testing.assert_close(tagger(rc_ids).logits, tagger(ids).logits.flip(1), atol=1e-5,
                               rtol=1e-4)
    with pytest.warns(HyenaGLTWarning, match="rc_average and rc_fusion are ignored"):
        HyenaGLTForCausalLM(config.replace(bidirectional=False))


def test_sequence_log_likelihood_matches_the_loss_and_ignores_padding():
    torch.manual_seed(0)
    lm = HyenaGLTForCausalLM(tiny_config(use_dynamic_merging=False)).eval()
    ids = torch.randint(7, 11, (1, 60))
    loss = lm(ids, labels=ids).loss
    torch.testing.assert_close(lm.sequence_log_likelihood(ids, reduction="mean"), -loss[None])
    padded = torch.cat([ids, torch.zeros(1, 20, dtype=torch.long)], 1)
    ll_padded = lm.sequence_log_likelihood(padded, (padded != 0).long())
    torch.testing.assert_close(ll_padded, lm.sequence_log_likelihood(ids), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(lm(padded, labels=padded).loss, loss, atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelError, match="bidirectional"):
        HyenaGLTForCausalLM(tiny_config(bidirectional=True)).sequence_log_likelihood(ids)


def test_hidden_states_attentions_and_bad_inputs():
    config = tiny_config(local_encoder_layers=2, local_decoder_layers=1)
    model = calibrated(HyenaGLTModel(config), torch.randint(7, 12, (1, 64)))
    out = model(torch.randint(7, 12, (1, 64)), output_hidden_states=True, output_attentions=True)
    # embeddings + 2 local + 3 global (patch level) + 1 decoder
    assert len(out.hidden_states) == 7
    patches = int(out.num_patches[0])
    assert out.hidden_states[3].shape == (1, patches, 16)
    assert [a.shape for a in out.attentions] == [(1, 2, patches, patches)]
    with pytest.raises(ModelError, match="alphabet_size"):
        model(torch.tensor([[7, 8, 40]]))
    with pytest.raises(ModelError, match="attention_mask shape"):
        model(torch.tensor([[7, 8]]), torch.ones(1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def variant_pairs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two 40-nt alt windows, each with its own SNV at index 20 in the ref window."""
    alt = torch.randint(7, 11, (2, 40), generator=torch.Generator().manual_seed(3))
    ref = alt.clone()
    ref[:, 20] = 7 + (alt[:, 20] - 7 + 1) % 4  # another base at the variant
    return ref, alt, torch.tensor([20, 20])


def test_variant_effect_model_scores_the_difference_between_ref_and_alt():
    torch.manual_seed(0)
    model = HyenaGLTForVariantEffect(tiny_config(num_classes=2)).eval()
    ref, alt, offset = variant_pairs()
    with torch.no_grad():
        logits = model(alt, ref_input_ids=ref, variant_offset=offset).logits
        no_change = model(alt, ref_input_ids=alt, variant_offset=offset).logits
        # The same alt window against another reference scores differently: an alt-only
        # head could not tell these pairs apart.
        assert logits.shape == (2, 2) and not torch.allclose(logits, no_change, atol=1e-4)
        # Padding (masked) leaves the score unchanged; an indel's windows differ in length.
        padded = torch.cat([alt, torch.zeros(2, 8, dtype=torch.long)], 1)
        mask = (padded != 0).long()
        same = model(padded, mask, ref_input_ids=ref, variant_offset=offset).logits
        torch.testing.assert_close(same, logits, rtol=1e-4, atol=1e-5)
        deletion = model(alt[:, :-1], ref_input_ids=ref, variant_offset=offset).logits
        assert deletion.shape == (2, 2)
    with pytest.raises(ModelError, match="reference window"):
        model(alt)


def test_variant_effect_model_with_one_output_regresses_a_score():
    model = HyenaGLTForVariantEffect(tiny_config(num_classes=1))
    ref, alt, offset = variant_pairs()
    scores = torch.tensor([-1.5, 0.2])
    out = model(alt, ref_input_ids=ref, variant_offset=offset, labels=scores)
    assert out.logits.shape == (2, 1)
    expected = torch.nn.functional.mse_loss(out.logits[:, 0], scores)
    aux = model.config.merge_aux_loss_weight * out.aux_loss
    torch.testing.assert_close(out.loss, expected + aux)
