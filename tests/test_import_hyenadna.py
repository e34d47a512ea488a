"""``hyena-glt import-hyenadna``: a randomly initialised HyenaDNA built with HyenaDNA's own
reference code (``shared/reference/standalone_hyenadna.py``), saved in its original and Hugging
Face layouts, imported, gives the same next-token logits on real genome sequence."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from hyena_glt.cli import main
from hyena_glt.data import DNATokenizer
from hyena_glt.errors import ConfigurationError, ModelError
from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForSequenceClassification
from hyena_glt.model.hyenadna import HYENADNA_IDS

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference" / "standalone_hyenadna.py"
GENOME = SHARED / "data" / "genomes" / "klebsiella_pneumoniae" / "Klebs_HS11286.fna.gz"
LAYER = {"_name_": "hyena", "emb_dim": 5, "filter_order": 16, "local_order": 3, "l_max": 1026,
         "modulate": True, "w": 10, "lr": 6e-4, "wd": 0.0, "lr_pos_emb": 0.0}
ARCH = {"d_model": 32, "n_layer": 2, "d_inner": 128, "vocab_size": 12, "resid_dropout": 0.0,
        "embed_dropout": 0.1, "pad_vocab_size_multiple": 8}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rearrange(tensor: torch.Tensor, pattern: str, **axes: int) -> torch.Tensor:
    """The four einops patterns HyenaDNA's Hyena operator uses (einops is not a dependency)."""
    if pattern in ("b l d -> b d l", "b d l -> b l d"):
        return tensor.transpose(1, 2)
    if pattern == "l (o d) -> o d l":
        return tensor.t().reshape(axes["o"], -1, tensor.shape[0])
    if pattern == "(o d) -> o d":
        return tensor.reshape(axes["o"], -1)
    raise NotImplementedError(pattern)


def _module(name: str, **names: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(names)
    return module


@pytest.fixture(scope="module")
def reference():
    """HyenaDNA's reference module, loaded with small stand-ins for what the model does not
    use (torchvision's StochasticDepth is the identity at p=0; the tokenizer base classes)."""
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} not found (the shared folder is absent)")
    empty = type("Empty", (), {"__init__": lambda self, *args, **kwargs: None})
    stand_ins = {
        "einops": _module("einops", rearrange=_rearrange),
        "torchvision": _module("torchvision"),
        "torchvision.ops": _module("torchvision.ops",
                                   StochasticDepth=lambda p, mode: nn.Identity()),
        "transformers": _module("transformers"),
        "transformers.tokenization_utils": _module(
            "transformers.tokenization_utils", AddedToken=empty, PreTrainedTokenizer=empty),
    }
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location("standalone_hyenadna", REFERENCE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


@pytest.fixture(scope="module")
def hyenadna(reference) -> nn.Module:
    """A small HyenaDNA whose every parameter is moved off its initial value, so a wrongly
    mapped tensor (LayerNorm, Sin frequency, filter bias...) changes the logits."""
    torch.manual_seed(0)
    model = reference.HyenaDNAModel(**ARCH, layer=dict(LAYER))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture(scope="module")
def genome_ids() -> torch.Tensor:
    """1,000 nt of a Klebsiella pneumoniae genome, as our token ids (batch of 2 windows)."""
    with gzip.open(GENOME, "rt") as handle:
        next(handle)
        text = "".join(line.strip() for _, line in zip(range(40), handle, strict=False))
    ids = DNATokenizer().batch_encode([text[:1000], text[1000:2000]])["input_ids"]
    return ids


def _save_original(model: nn.Module, directory: Path) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({**ARCH, "layer": LAYER}))
    state = {f"model.{key}": value.clone() for key, value in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 0, "epoch": 0}, directory / "weights.ckpt")
    return directory


def _save_hf(model: nn.Module, directory: Path) -> Path:
    """As the -hf repositories: HyenaConfig fields, ``hyena.`` keys, an explicit lm_head and the
    shared Sin frequency stored once (safetensors keeps one copy of shared tensors)."""
    directory.mkdir()
    config = {"d_model": 32, "n_layer": 2, "d_inner": 128, "vocab_size": 12,
              "max_seq_len": 1026, "emb_dim": 5, "filter_order": 16, "num_inner_mlps": 2,
              "hyena_order": 2, "short_filter_order": 3, "activation_freq": 10,
              "train_freq": True, "use_bias": True, "pad_vocab_size_multiple": 8,
              "layer_norm_epsilon": 1e-5, "model_type": "hyenadna"}
    (directory / "config.json").write_text(json.dumps(config))
    state = {f"hyena.{key}": value.clone().contiguous()
             for key, value in model.state_dict().items()
             if not key.endswith(("implicit_filter.3.freq", "implicit_filter.5.freq"))}
    state["lm_head.weight"] = model.backbone.embeddings.word_embeddings.weight.detach().clone()
    save_file(state, str(directory / "model.safetensors"))
    return directory


@pytest.mark.parametrize("layout", ["original", "huggingface"])
def test_imported_model_gives_hyenadna_next_token_logits(layout, hyenadna, genome_ids,
                                                         tmp_path):
    save = _save_original if layout == "original" else _save_hf
    source = save(hyenadna, tmp_path / "hyenadna")
    assert main(["import-hyenadna", str(source), "--out", str(tmp_path / "imported")]) == 0
    model = HyenaGLTForCausalLM.from_pretrained(tmp_path / "imported").eval()
    mapped = torch.tensor(HYENADNA_IDS)[genome_ids]  # the same bases in HyenaDNA's ids
    with torch.no_grad():
        hidden = hyenadna(mapped)
        expected = hidden @ hyenadna.backbone.embeddings.word_embeddings.weight.t()
        logits = model(genome_ids).logits
    expected = expected[..., HYENADNA_IDS]  # HyenaDNA's score of each of our ids
    gap = (logits - expected).abs().max()
    # float32 through 2 blocks of length-1000 FFT convolutions: errors of a few 1e-7 relative
    # to logits of order 1; 1e-5 is the bound.
    print(f"{layout}: max |logit gap| {float(gap):.2e}, max |logit| "
          f"{float(expected.abs().max()):.3f}")
    assert expected.abs().max() > 0.1 and gap <= 1e-5, float(gap)


def test_imported_model_fine_tunes_and_refuses_what_hyenadna_lacks(hyenadna, genome_ids,
                                                                   tmp_path):
    from hyena_glt.training import FineTuner

    source = _save_hf(hyenadna, tmp_path / "hf")
    main(["import-hyenadna", str(source), "--out", str(tmp_path / "imported")])
    finetuner = FineTuner(pretrained_model=tmp_path / "imported", num_classes=2)
    assert isinstance(finetuner.model, HyenaGLTForSequenceClassification)
    assert finetuner.tokenizer is not None and len(finetuner.tokenizer) == 22
    assert finetuner.model(genome_ids).logits.shape == (2, 2)
    with pytest.raises(ConfigurationError, match="use_dynamic_merging=True"):
        HyenaGLTForCausalLM.from_pretrained(tmp_path / "imported", use_dynamic_merging=True)


def test_unsafe_or_missing_checkpoints_are_refused_with_the_way_out(hyenadna, tmp_path):
    with pytest.raises(ModelError, match="no config.json.*git clone"):
        main_error(tmp_path / "nothing")
    source = _save_original(hyenadna, tmp_path / "pickled")
    torch.save({"state_dict": {}, "hyper_parameters": types.SimpleNamespace(lr=1)},
               source / "weights.ckpt")
    with pytest.raises(ModelError, match=r"weights_only=True\) refused.*-hf repository"):
        main_error(source)


def main_error(source: Path) -> None:
    from hyena_glt.model.hyenadna import import_hyenadna

    import_hyenadna(source, source.parent / "out")
