"""Import a published HyenaDNA checkpoint (Nguyen et al. 2023) as a Hyena-GLT causal LM.

Two local layouts are read, both a directory with ``config.json``:

* the original one (``LongSafari/hyenadna-*-seqlen``): ``weights.ckpt``, a PyTorch Lightning
  checkpoint whose ``state_dict`` keys start with ``model.``. It is read with
  ``torch.load(weights_only=True)``, which never runs pickled code;
* the Hugging Face one (``LongSafari/hyenadna-*-seqlen-hf``): ``model.safetensors`` with the
  key names of its ``modeling_hyena.py`` (``hyena.backbone.layers.N.mixer...``, ``lm_head``).

The result is a ``save_pretrained`` directory (``config.json`` with the HyenaDNA layout of
:mod:`.hyenadna_layout`, ``model.safetensors``, the DNA ``tokenizer.json``) that ``FineTuner``
and ``finetune.pretrained`` take like any model. Token ids are mapped: HyenaDNA's are
``[CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK] A C G T N``; ours put the specials in
another order and add the IUPAC ambiguity codes, which read HyenaDNA's ``[UNK]`` row (as its
tokenizer reads them). The LM head is HyenaDNA's (tied to its embeddings when absent).
"""

from __future__ import annotations

import json
import logging
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..config import HyenaGLTConfig
from ..data.tokenizers import DNATokenizer
from ..errors import HyenaGLTWarning, ModelError
from .filters import PositionalEmbedding
from .hyenadna_layout import BACKBONE_KEY, HYENADNA

__all__ = ["HYENADNA_IDS", "DOWNLOAD_HINT", "import_hyenadna", "read_hyenadna"]

logger = logging.getLogger(__name__)

#: HyenaDNA's id for each of our DNATokenizer ids (0..21).
HYENADNA_IDS = [4, 6, 0, 1, 3, 2, 1, 7, 8, 9, 10, 11] + [6] * 10
DOWNLOAD_HINT = ("download one first, e.g. `git lfs install && git clone https://huggingface.co/"
                 "LongSafari/hyenadna-tiny-1k-seqlen-hf` (or the original layout without -hf)")
#: Positional features further than this from the formula were trained (lr_pos_emb > 0).
_POSITION_TOLERANCE = 1e-5


def _settings(raw: dict[str, Any], source: Path) -> dict[str, Any]:
    """The architecture numbers of either config.json layout, checked against what we build."""
    layer = raw.get("layer", {})
    settings = {
        "d_model": raw.get("d_model"), "n_layer": raw.get("n_layer"),
        "d_inner": raw.get("d_inner"), "vocab_size": raw.get("vocab_size"),
        "l_max": raw.get("max_seq_len", layer.get("l_max")),
        "emb_dim": raw.get("emb_dim", layer.get("emb_dim", 3)),
        "filter_order": raw.get("filter_order", layer.get("filter_order", 64)),
        "num_inner_mlps": raw.get("num_inner_mlps", layer.get("num_inner_mlps", 2)),
        "order": raw.get("hyena_order", layer.get("order", 2)),
        "short_filter_order": raw.get("short_filter_order", layer.get("local_order", 3)),
        "layer_norm_epsilon": raw.get("layer_norm_epsilon", 1e-5),
        "dropout": raw.get("resid_dropout", raw.get("hyena_dropout", 0.0)),
    }
    missing = [name for name, value in settings.items() if value is None]
    if missing:
        raise ModelError(f"{source}: not a HyenaDNA config.json (no {', '.join(missing)})")
    expected = {"emb_dim": 5, "num_inner_mlps": 2, "short_filter_order": 3,
                "layer_norm_epsilon": 1e-5, "d_inner": 4 * settings["d_model"]}
    wrong = [f"{name}={settings[name]} (supported: {value})" for name, value in expected.items()
             if settings[name] != value]
    if raw.get("attn_layer_idx") or layer.get("modulate", True) is False:
        wrong.append("attention layers or modulate=False")
    if wrong:
        raise ModelError(f"{source}: a HyenaDNA variant this import does not reproduce: "
                         f"{'; '.join(wrong)}")
    return settings


def _load_lightning(path: Path) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError) as err:
        raise ModelError(
            f"{path}: torch.load(weights_only=True) refused it ({str(err).splitlines()[0]}): "
            "it pickles objects besides tensors, and running pickled code is not safe. Use the "
            "Hugging Face layout of the same model (the -hf repository, model.safetensors), or "
            "in an environment you trust keep only the weights: python -c \"import torch; "
            f"c = torch.load('{path}', weights_only=False); "
            "torch.save({'state_dict': c['state_dict']}, 'weights.ckpt')\"") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: no state_dict of tensors in this checkpoint")
    return {key.removeprefix("model.").replace(".mixer.layer.", ".mixer."): value
            for key, value in state.items() if isinstance(value, torch.Tensor)}


def read_hyenadna(source: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(settings, tensors)`` of a HyenaDNA directory, tensor keys as ``backbone.layers...``.

    Raises:
        ModelError: no such directory, no config.json or weights, an unsupported variant, or
            a checkpoint ``torch.load(weights_only=True)`` refuses (with what to do instead).
    """
    source = Path(source)
    config_path = source / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{source}: not a HyenaDNA checkpoint directory (no config.json); "
                         f"{DOWNLOAD_HINT}")
    settings = _settings(json.loads(config_path.read_text()), config_path)
    if (source / "model.safetensors").is_file():
        state = {key.removeprefix("hyena."): value
                 for key, value in load_file(source / "model.safetensors").items()}
    elif (source / "weights.ckpt").is_file():
        state = _load_lightning(source / "weights.ckpt")
    else:
        raise ModelError(f"{source}: neither model.safetensors (Hugging Face layout) nor "
                         f"weights.ckpt (original layout); {DOWNLOAD_HINT}")
    return settings, state


def _take(state: dict[str, torch.Tensor], key: str, source: Path) -> torch.Tensor:
    if key not in state:
        raise ModelError(f"{source}: the checkpoint has no {key!r}; is it a HyenaDNA model?")
    return state.pop(key)


def _layer(state: dict[str, torch.Tensor], i: int, settings: dict[str, Any], source: Path
           ) -> dict[str, torch.Tensor]:
    """Our ``backbone.local_encoder.{i}`` tensors from HyenaDNA's ``backbone.layers.{i}``."""
    src, dst = f"backbone.layers.{i}.", f"backbone.local_encoder.{i}."
    names = {"norm1": "norm_mixer", "norm2": "norm_mlp", "mlp.fc1": "mlp.fc_in",
             "mlp.fc2": "mlp.fc_out", "mixer.in_proj": "mixer.in_proj",
             "mixer.out_proj": "mixer.out_proj", "mixer.short_filter": "mixer.short_filter"}
    out = {f"{dst}{ours}.{kind}": _take(state, f"{src}{theirs}.{kind}", source)
           for theirs, ours in names.items() for kind in ("weight", "bias")}
    fn = f"{src}mixer.filter_fn."
    out[f"{dst}mixer.skip"] = _take(state, f"{fn}bias", source).reshape(
        settings["order"] - 1, settings["d_model"], 1)
    for index in (0, 2, 4, 6):
        out[f"{dst}mixer.filter.mlp.{index}.weight"] = _take(
            state, f"{fn}implicit_filter.{index}.weight", source)
        if index < 6:
            out[f"{dst}mixer.filter.mlp.{index}.bias"] = _take(
                state, f"{fn}implicit_filter.{index}.bias", source)
    # One Sin module is shared by the MLP; safetensors may keep only one copy of its frequency.
    freqs = [state.pop(f"{fn}implicit_filter.{index}.freq", None) for index in (1, 3, 5)]
    present = [f for f in freqs if f is not None]
    if not present:
        raise ModelError(f"{source}: no {fn}implicit_filter.*.freq in the checkpoint")
    for index, freq in zip((1, 3, 5), freqs, strict=True):
        out[f"{dst}mixer.filter.mlp.{index}.freq"] = (freq if freq is not None
                                                      else present[0]).reshape(-1)
    _check_positions(state.pop(f"{fn}pos_emb.z", None), settings, f"{fn}pos_emb.z")
    for derived in ("pos_emb.t", "modulation.deltas"):  # recomputed from the same formulas
        state.pop(f"{fn}{derived}", None)
    return out


def _check_positions(z: torch.Tensor | None, settings: dict[str, Any], key: str) -> None:
    """Warn when the checkpoint's positional features differ from the formula we recompute."""
    if z is None:
        return
    formula, _ = PositionalEmbedding(settings["emb_dim"], settings["l_max"])(z.shape[-2])
    gap = float((z.reshape(formula.shape).float() - formula).abs().max())
    if gap > _POSITION_TOLERANCE:
        warnings.warn(f"{key} differs from HyenaDNA's formula by up to {gap:.2g} (trained with "
                      "lr_pos_emb > 0); Hyena-GLT regenerates positional features, so outputs "
                      "differ from the original model", HyenaGLTWarning, stacklevel=3)


def convert_hyenadna(settings: dict[str, Any], state: dict[str, torch.Tensor], source: Path
                     ) -> tuple[HyenaGLTConfig, dict[str, torch.Tensor]]:
    """The Hyena-GLT config and ``HyenaGLTForCausalLM`` state of a read HyenaDNA checkpoint."""
    state = dict(state)
    config = HyenaGLTConfig(
        vocab_size=0, alphabet_size=len(HYENADNA_IDS), d_model=settings["d_model"],
        n_layers=settings["n_layer"], sequence_length=settings["l_max"],
        hyena_order=settings["order"], filter_order=settings["filter_order"],
        conv_kernel_size=settings["short_filter_order"], num_heads=1, attention_layers=(),
        dropout=settings["dropout"], use_dynamic_merging=False, local_decoder_layers=0,
        task_type="dna_sequence_modeling",
        extra={BACKBONE_KEY: HYENADNA, "imported_from": str(source)})
    ids = torch.tensor(HYENADNA_IDS)
    embeddings = _take(state, "backbone.embeddings.word_embeddings.weight", source)
    head = state.pop("lm_head.weight", embeddings)  # HyenaDNA ties its LM head by default
    out = {"backbone.embeddings.token.weight": embeddings[ids],
           "head.weight": head[ids], "head.bias": head.new_zeros(len(ids)),
           "backbone.final_norm.weight": _take(state, "backbone.ln_f.weight", source),
           "backbone.final_norm.bias": _take(state, "backbone.ln_f.bias", source)}
    for i in range(settings["n_layer"]):
        out.update(_layer(state, i, settings, source))
    if state:
        logger.info("%s: not imported (not part of the language model): %s", source,
                    ", ".join(sorted(state)))
    return config, {key: value.float().contiguous() for key, value in out.items()}


def import_hyenadna(source: str | Path, out: str | Path) -> Path:
    """Convert the HyenaDNA checkpoint directory ``source`` into the model directory ``out``.

    Returns:
        ``out``, loadable with ``HyenaGLTForCausalLM.from_pretrained`` and usable as
        ``FineTuner(pretrained_model=out)``.

    Raises:
        ModelError: see :func:`read_hyenadna`; or tensors that do not fit the model built from
            the config (named).
    """
    from .modeling import HyenaGLTForCausalLM  # modeling imports the layout, not this module
    from .pretrained import load_state_checked

    source = Path(source)
    config, state = convert_hyenadna(*read_hyenadna(source), source)
    model = HyenaGLTForCausalLM(config)
    load_state_checked(model, state, str(source))
    return model.save_pretrained(out, tokenizer=DNATokenizer(vocab_size=0))
