"""``HyenaGLTConfig``: every hyper-parameter of a Hyena-GLT model, validated on construction.

The config round-trips through ``config.json`` (``save_pretrained`` / ``from_pretrained``), so a
model directory is self-describing. An impossible value raises :class:`ConfigurationError` naming
the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .io import atomic_file

#: Ways a sequence-level head summarises positions (``HyenaGLTConfig.pooling``).
POOLINGS = ("mean", "attention")
#: Where per-base heads combine the two strands (``HyenaGLTConfig.rc_fusion``).
RC_FUSIONS = ("logits", "states")

__all__ = ["HyenaGLTConfig", "TASK_TYPES", "PER_BASE_TASKS", "CONFIG_NAME", "POOLINGS",
           "RC_FUSIONS", "parse_number", "check_config_fields"]

CONFIG_NAME = "config.json"

#: The API's genomic task types, and the generic names they map onto.
TASK_TYPES = (
    "dna_sequence_modeling",  # causal / masked LM pretraining on nucleotides
    "protein_function",  # sequence classification of proteins
    "genome_annotation",  # per-base (token) classification
    "variant_effect",  # ref/alt pair scoring
    "sequence_classification",
    "token_classification",
    "regression",
)
#: Task types of per-base (token) classification heads.
PER_BASE_TASKS = ("genome_annotation", "token_classification")


def parse_number(value: Any, kind: type, where: str) -> int | float:
    """The one reader of numbers from ``--set``, YAML and ``config.json``.

    YAML 1.1 reads ``1e-3`` (no dot) as a string and JSON may quote numbers (``"0.1"``), so
    text is parsed here; a whole number given as ``2e3`` or ``32.0`` is accepted for an integer
    field. Anything else raises :class:`ConfigurationError` naming ``where`` and the value.
    """
    wanted = "an integer" if kind is int else "a number"
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or (
            isinstance(number, float) and not math.isfinite(number)):
        raise ConfigurationError(f"{where}={value!r} is not {wanted}")
    if kind is int:
        if number != int(number):
            raise ConfigurationError(f"{where}={value!r} is not {wanted}")
        return int(number)
    return float(number)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """``value`` of field ``name`` converted to its annotated type (or a named error)."""
    where = f"HyenaGLTConfig.{name}"
    optional = type(None) in typing.get_args(hint)
    if value is None:
        if optional:
            return None
        raise ConfigurationError(f"{where}=None is not allowed: give a value (or leave the "
                                 "field out for its default)")
    if optional:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    origin = typing.get_origin(hint)
    if hint in (int, float):
        return parse_number(value, hint, where)
    if hint is bool:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}={value!r} is not true or false")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}={value!r} is not a string")
        return value
    if origin is tuple:  # tuple[int, ...]: one number, a list, or "3,4,5"
        items = value.split(",") if isinstance(value, str) else value
        items = items if isinstance(items, (list, tuple)) else [items]
        return tuple(parse_number(item, int, f"{where}[{i}]") for i, item in enumerate(items))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{where}={value!r} is not a mapping")
        return dict(value)
    return value


@functools.cache
def _field_types() -> dict[str, Any]:
    """HyenaGLTConfig's field annotations, evaluated once (they are strings here)."""
    return typing.get_type_hints(HyenaGLTConfig)


def check_config_fields(fields: Mapping[str, Any], where: str,
                        base: Mapping[str, Any] | None = None) -> HyenaGLTConfig:
    """Validate ``fields`` (over ``base``) as a :class:`HyenaGLTConfig`, naming ``where``.

    The check the workflow runs at DAG time on ``pretrain.model`` and the fine-tuning
    overrides, so a wrong value stops Snakemake before any job, with the same rules as the CLI.
    """
    if not isinstance(fields, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping of HyenaGLTConfig fields")
    try:
        return HyenaGLTConfig.from_dict({**(base or {}), **fields})
    except ConfigurationError as err:
        raise ConfigurationError(f"{where}: {err}") from None


@dataclass
class HyenaGLTConfig:
    """Hyper-parameters of a Hyena-GLT model (defaults follow ``shared/API.md``)."""

    # --- vocabulary -------------------------------------------------------------------------
    #: Buckets of the BLT-style hash n-gram embeddings added to each token embedding
    #: (Pagnoni et al. 2024, "Byte Latent Transformer"); 0 turns them off.
    vocab_size: int = 8192
    #: n-gram lengths hashed into those buckets.
    ngram_sizes: tuple[int, ...] = (3, 4, 5, 6)
    #: Character-level token ids covered by the embedding and the LM head; must be at least
    #: ``len(tokenizer)`` (DNA/RNA 22, protein 33).
    alphabet_size: int = 33
    #: Token id used for padding (the tokenizers' ``pad_token_id``).
    pad_token_id: int = 0

    # --- architecture -----------------------------------------------------------------------
    d_model: int = 512
    n_layers: int = 8
    #: Maximum sequence length (nucleotides) the implicit filters are built for.
    sequence_length: int = 4096
    task_type: str = "dna_sequence_modeling"
    #: Order N of the Hyena recurrence (number of gates); the input projection is (N+1)*d_model.
    hyena_order: int = 2
    #: Width of the MLP that generates the implicit long filters.
    filter_order: int = 64
    #: Kernel size of the short depthwise causal convolution before the gates.
    conv_kernel_size: int = 3
    num_heads: int = 8
    #: Indices (0-based) of layers of the global stack that are attention blocks rather than
    #: Hyena blocks (Savanna/StripedHyena striping). ``None``: one attention block in every
    #: four layers, starting at the second (e.g. 8 layers -> (1, 5)).
    attention_layers: tuple[int, ...] | None = None
    dropout: float = 0.1
    #: Bidirectional (non-causal) long convolutions and attention, for encoder-style tasks.
    bidirectional: bool = False
    #: Average predictions over the sequence and its reverse complement (post-hoc RC; the
    #: k-mer path's included), so either strand gives the same prediction.
    rc_average: bool = False
    #: Per-base heads: ``"logits"`` (with ``rc_average``, average two one-sided predictions)
    #: or ``"states"`` (always read both strands; the head sees each base's forward and
    #: reverse-complement states side by side: upstream and downstream context together,
    #: even from a causal backbone).
    rc_fusion: str = "logits"

    # --- BLT dynamic merging ----------------------------------------------------------------
    use_dynamic_merging: bool = True
    #: Fraction of positions merged away (0 = no merging; 0.5 = mean patch of 2 tokens).
    merge_ratio: float = 0.5
    #: Not read by the models: their merging threshold is calibrated during training to give
    #: ``merge_ratio`` (see :class:`~hyena_glt.model.merging.DynamicMergingLayer`, whose
    #: ``threshold`` argument fixes one). Kept so that config.json files that hold it load.
    merge_threshold: float = 0.1
    #: How patch boundaries are chosen: ``"entropy"`` (global threshold on next-token
    #: entropy), ``"monotonic"`` (entropy rises), or ``"learned"`` (a boundary score).
    merge_mode: str = "entropy"
    min_patch_size: int = 1
    max_patch_size: int = 16
    #: Hyena layers of the byte-level local encoder that runs before merging.
    local_encoder_layers: int = 1
    # Added by the model issue: per-nucleotide Hyena layers after un-merging (BLT's local
    # decoder; 0 = none) and the weight of the entropy model's auxiliary next-token loss.
    local_decoder_layers: int = 1
    merge_aux_loss_weight: float = 0.1

    # --- task heads -------------------------------------------------------------------------
    num_classes: int = 2
    #: Outputs of a regression head.
    output_dim: int = 1
    id2label: dict[int, str] | None = None
    #: How sequence-level heads summarise positions: ``"mean"`` (masked mean) or
    #: ``"attention"`` (learned attention pooling, which can weight where a signal sits).
    pooling: str = "mean"
    #: Add a direct path from k-mer counts to the logits, so the model contains the k-mer
    #: regression (see :mod:`hyena_glt.model.kmer_path`): sequence heads read every k-mer's
    #: frequency and the log length; per-base heads the codon usage of each reading frame
    #: within each of ``kmer_windows`` bases on either side ((60, 200): the best on the
    #: chloroplast CDS validation windows of 90, 150, 250, (60, 200) and (90, 300)).
    #: ``None`` (the default) means on for per-base tasks (:data:`PER_BASE_TASKS`), where it
    #: won every comparison over 3 seeds, and off for the rest, where fine-tuning a pretrained
    #: model with it did not win (benchmarks/quality_results.md, issue 20); see
    #: :attr:`uses_kmer_path`.
    kmer_path: bool | None = None
    kmer_windows: tuple[int, ...] = (60, 200)

    # --- training ---------------------------------------------------------------------------
    learning_rate: float = 1e-4
    batch_size: int = 32
    num_epochs: int = 10
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    #: Recompute each block's activations in the backward pass instead of storing them: memory
    #: of one block's activations instead of all of them, for about one extra forward pass.
    gradient_checkpointing: bool = False
    seed: int = 0

    #: Free-form extras a caller wants stored with the model (kept, never interpreted).
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hints = _field_types()
        for spec in dataclasses.fields(self):
            setattr(self, spec.name, _coerce(spec.name, getattr(self, spec.name),
                                             hints[spec.name]))
        if self.id2label is not None:
            self.id2label = {parse_number(k, int, "HyenaGLTConfig.id2label key"): str(v)
                             for k, v in self.id2label.items()}
        self.validate()

    # ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigurationError` for the first impossible value."""

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ConfigurationError(
                    f"HyenaGLTConfig.{name}={getattr(self, name)!r} is invalid: must be {allowed}"
                )

        def positive_int(name: str) -> None:
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name,
                 "an integer >= 1")

        for name in ("d_model", "n_layers", "sequence_length", "filter_order", "num_heads",
                     "num_classes", "output_dim", "batch_size", "num_epochs",
                     "gradient_accumulation_steps", "alphabet_size", "min_patch_size",
                     "max_patch_size", "local_encoder_layers"):
            positive_int(name)
        need(isinstance(self.vocab_size, int) and self.vocab_size >= 0, "vocab_size",
             "an integer >= 0 (0 disables hash n-gram embeddings)")
        need(all(n >= 2 for n in self.ngram_sizes), "ngram_sizes", "n-gram lengths >= 2")
        need(0 <= self.pad_token_id < self.alphabet_size, "pad_token_id",
             f"in [0, alphabet_size={self.alphabet_size})")
        need(self.task_type in TASK_TYPES, "task_type", f"one of {', '.join(TASK_TYPES)}")
        need(isinstance(self.hyena_order, int) and 2 <= self.hyena_order <= 8, "hyena_order",
             "an integer in [2, 8]")
        need(isinstance(self.conv_kernel_size, int) and 1 <= self.conv_kernel_size <= 64,
             "conv_kernel_size", "an integer in [1, 64]")
        need(self.d_model % self.num_heads == 0, "num_heads",
             f"a divisor of d_model={self.d_model}")
        if self.attention_layers is not None:
            need(len(set(self.attention_layers)) == len(self.attention_layers)
                 and all(0 <= i < self.n_layers for i in self.attention_layers),
                 "attention_layers", f"distinct layer indices in [0, n_layers={self.n_layers})")
        need(0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")
        need(0.0 <= self.merge_ratio < 1.0, "merge_ratio", "in [0, 1)")
        need(self.merge_threshold >= 0.0, "merge_threshold", ">= 0")
        need(self.merge_mode in ("entropy", "monotonic", "learned"), "merge_mode",
             "one of entropy, monotonic, learned")
        need(isinstance(self.local_decoder_layers, int) and self.local_decoder_layers >= 0,
             "local_decoder_layers", "an integer >= 0")
        need(self.merge_aux_loss_weight >= 0.0, "merge_aux_loss_weight", ">= 0")
        need(self.max_patch_size >= self.min_patch_size, "max_patch_size",
             f">= min_patch_size={self.min_patch_size}")
        need(self.pooling in POOLINGS, "pooling", f"one of {', '.join(POOLINGS)}")
        need(self.rc_fusion in RC_FUSIONS, "rc_fusion", f"one of {', '.join(RC_FUSIONS)}")
        need(len(self.kmer_windows) >= 1 and all(n >= 1 for n in self.kmer_windows),
             "kmer_windows", "one or more half-widths >= 1")
        need(self.learning_rate > 0, "learning_rate", "> 0")
        need(self.weight_decay >= 0, "weight_decay", ">= 0")
        need(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, "warmup_steps",
             "an integer >= 0")
        need(self.max_grad_norm > 0, "max_grad_norm", "> 0")
        if self.id2label is not None:
            need(len(self.id2label) == self.num_classes, "id2label",
                 f"a mapping with num_classes={self.num_classes} entries")

    @property
    def uses_kmer_path(self) -> bool:
        """Whether the task head adds the k-mer path: ``kmer_path``, or where it is unset,
        whether the task is per-base."""
        return self.task_type in PER_BASE_TASKS if self.kmer_path is None else self.kmer_path

    @property
    def attention_layer_indices(self) -> tuple[int, ...]:
        """Layers of the global stack that are attention blocks (see ``attention_layers``)."""
        if self.attention_layers is not None:
            return self.attention_layers
        return tuple(range(1, self.n_layers, 4))

    # --- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ngram_sizes"] = list(self.ngram_sizes)
        data["kmer_windows"] = list(self.kmer_windows)
        if self.attention_layers is not None:
            data["attention_layers"] = list(self.attention_layers)
        if self.id2label is not None:
            data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyenaGLTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            close = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
            hints = "".join(f" ({name!r}: did you mean {match[0]!r}?)"
                            for name, match in close.items() if match)
            raise ConfigurationError(
                f"unknown HyenaGLTConfig field(s): {', '.join(unknown)}{hints}; known fields: "
                f"{', '.join(sorted(known))}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> HyenaGLTConfig:
        """A validated copy with some fields changed."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` into ``directory`` (atomically) and return its path."""
        path = Path(directory) / CONFIG_NAME
        with atomic_file(path) as tmp:
            tmp.write_text(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> HyenaGLTConfig:
        """Read a config from a model directory or a JSON file."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"{path}: no such config file") from None
        except json.JSONDecodeError as err:
            raise ConfigurationError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: expected a JSON object of config fields")
        if "kmer_path" not in data and data.get("task_type") in PER_BASE_TASKS:
            # Saved before the field existed: a per-base model trained without the path, so
            # its weights have none to load (the per-base default would build one).
            data["kmer_path"] = False
        try:
            return cls.from_dict(data)
        except ConfigurationError as err:
            raise ConfigurationError(f"{path}: {err}") from None
