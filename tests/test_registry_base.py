"""The bundled ``hyena-glt-base``: resolves offline, loads strictly, and loses to a registered
model of the same name; its card quotes its measurements."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import CharTokenizer
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.training import FineTuner, register_model, registered_models, resolve_model
from hyena_glt.training.registry import BUNDLED_MODELS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

REPO = Path(__file__).resolve().parents[1]
BASE = BUNDLED_MODELS / "hyena-glt-base"
FILES = ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md",
         "evaluation.json")


@pytest.fixture(autouse=True)
def empty_registry(tmp_path, monkeypatch):
    """No user registry: only the bundled model can answer."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)


def test_the_bundled_model_is_complete_and_small():
    for name in FILES:
        assert (BASE / name).is_file(), name
    assert (BASE / "model.safetensors").stat().st_size < 8 * 2**20
    state = load_file(str(BASE / "model.safetensors"))
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.bfloat16}


def test_package_data_ships_every_asset_file():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = settings["package-data"]["hyena_glt"]
    for name in FILES:
        relative = (BASE / name).relative_to(REPO / "hyena_glt").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def newer_state(model: torch.nn.Module) -> set[str]:
    """State keys the model added after the bundled base was saved (``optional_state_keys``):
    absent from its file, they keep their initial values."""
    return {f"{name}.{key}" if name else key for name, module in model.named_modules()
            for key in getattr(module, "optional_state_keys", ())}


def test_name_resolves_to_the_bundled_model_and_loads_strictly():
    assert resolve_model("hyena-glt-base") == BASE
    assert registered_models()["hyena-glt-base"] == BASE
    model = HyenaGLTForCausalLM.from_pretrained(resolve_model("hyena-glt-base"))  # strict
    stored = load_file(str(BASE / "model.safetensors"))
    newer = newer_state(model)
    assert set(model.state_dict()) - set(stored) == newer
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32 or not value.is_floating_point()
        if key not in newer:
            assert torch.equal(value, stored[key].to(value.dtype)), key
    tokenizer = CharTokenizer.load(BASE / "tokenizer.json")
    assert HyenaGLTConfig.from_pretrained(BASE).alphabet_size == len(tokenizer)
    ids = torch.tensor([tokenizer.encode("ACGTACGTTTGACCA")])
    with torch.no_grad():
        probs = model.eval()(ids).logits.softmax(-1)
    assert probs.shape == (1, 15, model.config.alphabet_size)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 15))


def test_finetuner_starts_from_the_bundled_weights():
    tuner = FineTuner(pretrained_model="hyena-glt-base", task_type="sequence_classification",
                      num_classes=2)
    assert tuner.source == BASE and tuner.model.config.num_classes == 2
    stored = load_file(str(BASE / "model.safetensors"))
    backbone = tuner.model.backbone.state_dict()
    newer = newer_state(tuner.model.backbone)
    assert backbone.keys() - newer == {k.removeprefix("backbone.") for k in stored if
                                       k.startswith("backbone.")}
    for key, value in backbone.items():
        if key not in newer:
            assert torch.equal(value, stored[f"backbone.{key}"].to(value.dtype)), key


def test_a_registered_model_of_the_same_name_wins(tmp_path):
    local = HyenaGLTForCausalLM(HyenaGLTConfig(d_model=16, n_layers=1, vocab_size=64,
                                               alphabet_size=22, sequence_length=64,
                                               num_heads=2, filter_order=8))
    local.save_pretrained(tmp_path / "mine")
    register_model("hyena-glt-base", tmp_path / "mine")
    assert resolve_model("hyena-glt-base") == (tmp_path / "mine").resolve()
    assert registered_models()["hyena-glt-base"] == (tmp_path / "mine").resolve()


def test_the_card_quotes_the_measured_numbers():
    card = (BASE / "MODEL_CARD.md").read_text()
    measured = json.loads((BASE / "evaluation.json").read_text())
    heldout = measured["heldout"]["klebsiella_kp1084@4096"]
    assert 1.0 < heldout["perplexity"] < 4.5  # a DNA LM: between certainty and far off uniform
    assert f"{heldout['perplexity']:.4f}" in card
    assert measured["base_config"]["curriculum"] in card
    assert "hyena-glt pretrain" in card and "Klebs_Kp1084" in card
    assert set(measured["finetune"]) == {"promoters", "chloroplast_cds"}
    for arms in measured["finetune"].values():
        assert set(arms) == {"base", "scratch"}
        for arm in arms.values():
            assert f"{arm['accuracy']:.4f}" in card and f"{arm['auroc']:.4f}" in card
