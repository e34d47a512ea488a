"""What users of transformers/HyenaDNA expect of the model API (issue 19): indexable outputs,
``from_pretrained`` of registry names on every class, gradient checkpointing, and clear
refusals (protein task on a DNA model, left padding with merging) instead of late failures."""

from __future__ import annotations

import warnings

import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import GenomicDataset, ProteinTokenizer
from hyena_glt.errors import ConfigurationError, HyenaGLTWarning, ModelError
from hyena_glt.model import (
    HyenaGLTForCausalLM,
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
    HyenaGLTModel,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**changes) -> HyenaGLTConfig:
    settings = dict(vocab_size=64, d_model=16, n_layers=3, num_heads=2, sequence_length=256,
                    filter_order=8, dropout=0.0, attention_layers=(1,), num_classes=3,
                    max_patch_size=6, merge_ratio=0.5, alphabet_size=22)
    settings.update(changes)
    return HyenaGLTConfig(**settings)


@pytest.fixture
def isolated_registry(tmp_path, monkeypatch):
    """Only the bundled models are registered (no user cache, no registry file)."""
    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_outputs_index_like_transformers_model_output():
    torch.manual_seed(0)
    model = HyenaGLTForSequenceClassification(tiny_config()).eval()
    ids = torch.randint(7, 11, (2, 30))
    out = model(ids)
    assert out[0] is out.logits and out["logits"] is out.logits  # no labels: logits first
    with_loss = model(ids, labels=torch.tensor([0, 2]))
    assert with_loss[0] is with_loss.loss and with_loss[1] is with_loss.logits
    loss, logits = with_loss[:2]
    assert loss.ndim == 0 and logits.shape == (2, 3)
    assert list(with_loss)[:2] == ["loss", "logits"] == with_loss.keys()[:2]
    assert with_loss.to_tuple()[0] is with_loss.loss
    with pytest.raises(KeyError, match="'hidden_states' is not set"):
        out["hidden_states"]
    backbone = HyenaGLTModel(tiny_config()).eval()(ids)
    assert backbone[0] is backbone.last_hidden_state


@pytest.mark.parametrize("cls", [HyenaGLTModel, HyenaGLTForCausalLM,
                                 HyenaGLTForSequenceClassification,
                                 HyenaGLTForTokenClassification, HyenaGLTForRegression])
def test_every_class_loads_the_registry_base_model(cls, isolated_registry):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = cls.from_pretrained("hyena-glt-base")
    fresh_head = cls not in (HyenaGLTModel, HyenaGLTForCausalLM)
    assert any("newly initialised" in str(w.message) and w.category is HyenaGLTWarning
               for w in caught) == fresh_head
    lm = HyenaGLTForCausalLM.from_pretrained("hyena-glt-base")
    backbone = model if cls is HyenaGLTModel else model.backbone
    for key, value in lm.backbone.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value), key


def test_fine_tuned_heads_are_not_dropped_silently(tmp_path):
    HyenaGLTForSequenceClassification(tiny_config()).save_pretrained(tmp_path / "clf")
    with pytest.raises(ModelError, match="holds a HyenaGLTForSequenceClassification"):
        HyenaGLTForTokenClassification.from_pretrained(tmp_path / "clf")
    with pytest.raises(ModelError, match="unknown pretrained model 'no-such-model'"):
        HyenaGLTModel.from_pretrained("no-such-model")


def test_protein_task_on_a_dna_model_is_refused_at_construction(isolated_registry):
    from hyena_glt.training import FineTuner, HyenaGLTTrainer

    with pytest.raises(ConfigurationError, match=r"alphabet_size=22.*protein") as error:
        FineTuner(pretrained_model="hyena-glt-base", task_type="protein_function",
                  num_classes=10)
    assert "pretrained_model=DIR" in str(error.value)  # the fix is named
    with pytest.raises(ConfigurationError, match="alphabet_size=22"):
        HyenaGLTForSequenceClassification(tiny_config(task_type="protein_function"))
    with pytest.raises(ConfigurationError, match="proteins have no reverse complement"):
        HyenaGLTForSequenceClassification(tiny_config(
            task_type="protein_function", alphabet_size=33, rc_average=True))
    protein = HyenaGLTForSequenceClassification(tiny_config(task_type="protein_function",
                                                            alphabet_size=33))
    assert protein(torch.randint(7, 33, (1, 20))).logits.shape == (1, 3)
    generic = HyenaGLTForSequenceClassification(tiny_config(alphabet_size=33, rc_average=True))
    proteins = GenomicDataset(sequences=["MKTLLLTLL", "MSDNELQK"], labels=[0, 1],
                              tokenizer=ProteinTokenizer())
    with pytest.raises(ConfigurationError, match="amino acids have no complement"):
        HyenaGLTTrainer(generic, train_dataset=proteins)


def test_left_padding_is_refused_where_it_would_change_results():
    torch.manual_seed(0)
    ids = torch.randint(7, 11, (2, 24))
    left = torch.ones_like(ids)
    left[0, :5] = 0
    with pytest.raises(ModelError, match="left padding.*pad on the right"):
        HyenaGLTModel(tiny_config()).eval()(ids, left)
    with pytest.raises(ModelError, match="left padding"):
        HyenaGLTForSequenceClassification(tiny_config(
            use_dynamic_merging=False, rc_average=True)).eval()(ids, left)
    plain = HyenaGLTForCausalLM(tiny_config(use_dynamic_merging=False)).eval()
    ids[0, :5] = 0
    alone = plain(ids[:1, 5:]).logits  # without merging, left padding is exact
    torch.testing.assert_close(plain(ids, left).logits[:1, 5:], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [HyenaGLTForCausalLM, HyenaGLTForSequenceClassification])
def test_int32_input_ids_train_like_int64(cls):
    torch.manual_seed(0)
    model = cls(tiny_config()).train()
    ids = torch.randint(7, 11, (2, 32))
    labels = ids if cls is HyenaGLTForCausalLM else torch.tensor([0, 1])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss64 = model(ids, labels=labels).loss
    model.load_state_dict(state)
    loss32 = model(ids.int(), labels=labels.int()).loss
    assert torch.equal(loss32, loss64)


def test_gradient_checkpointing_gives_the_plain_gradients():
    config = tiny_config(dropout=0.1, local_decoder_layers=1)  # dropout: RNG replayed too
    ids = torch.randint(7, 11, (2, 40), generator=torch.Generator().manual_seed(1))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = HyenaGLTForCausalLM(config).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        calls: list[int] = []
        model.backbone.global_stack.layers[0].mixer.register_forward_hook(
            lambda *args, calls=calls: calls.append(1))
        torch.manual_seed(1)
        model(ids, labels=ids).loss.backward()
        assert len(calls) == (2 if checkpointing else 1)  # recomputed in the backward pass
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys()
    for name, grad in plain.items():
        # Same operations, recomputed: equal up to float32 summation order (a few ulps).
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    model.gradient_checkpointing_disable()
    assert not model.backbone.gradient_checkpointing
    assert not model.backbone.global_stack.gradient_checkpointing
    config.gradient_checkpointing = True  # a HyenaGLTConfig field where the config has it
    assert HyenaGLTForCausalLM(config).backbone.global_stack.gradient_checkpointing
