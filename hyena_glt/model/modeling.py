"""Hyena-GLT models: backbone (embeddings -> local encoder -> merging -> striped global stack ->
un-merge -> local decoder) and task models (backbone + head).

Shapes: ``input_ids (B, L)`` int64, ``attention_mask (B, L)`` 1 = real (right padding);
every output is per position (length L) or pooled per sequence.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HyenaGLTConfig
from ..data.tokenizers import SPECIAL_TOKENS, ProteinTokenizer
from ..errors import ConfigurationError, HyenaGLTWarning, ModelError
from .blocks import HyenaBlock, run_block
from .embeddings import HashNGramEmbedding
from .generation import generate
from .heads import (
    RegressionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
)
from .hyenadna_layout import hyenadna_block_options
from .kmer_path import FrameKmerPath, SequenceKmerPath
from .merging import DynamicMergingLayer
from .outputs import (
    CausalLMOutput,
    HyenaGLTOutput,
    RegressionOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pretrained import HyenaGLTPreTrainedModel
from .reverse_complement import complement_table, flip_positions, reverse_complement
from .striped import StrippedHyenaOperator
from .variant_head import VariantEffectHead

#: Token ids of ProteinTokenizer (special tokens + amino acids).
PROTEIN_ALPHABET_SIZE = len(SPECIAL_TOKENS) + len(ProteinTokenizer.alphabet)

__all__ = ["check_task_alphabet", "kmer_path_options", "PROTEIN_ALPHABET_SIZE", "HyenaGLTModel", "HyenaGLTForSequenceClassification",
           "HyenaGLTForTokenClassification", "HyenaGLTForRegression", "HyenaGLTForCausalLM",
           "HyenaGLTForVariantEffect"]


class HyenaGLTModel(HyenaGLTPreTrainedModel):
    """The backbone: ``(B, L) ids -> HyenaGLTOutput`` with ``last_hidden_state (B, L, d)``.

    The local encoder is always causal: its states feed the next-token entropy model that
    places patch boundaries (BLT). The global stack and local decoder follow
    ``config.bidirectional``. Without merging, the global stack runs over positions and each
    position reads its own output, which is what merging with ``merge_ratio=0`` computes too.
    """

    def __init__(self, config: HyenaGLTConfig) -> None:
        super().__init__(config)
        c = config
        # An imported HyenaDNA checkpoint: its n_layers blocks in a row (no merging, no global
        # stack, no skip around it), with HyenaDNA's tanh GELU and filter decay floor.
        imported = hyenadna_block_options(c)
        self.embeddings = HashNGramEmbedding(c.alphabet_size, c.d_model, c.vocab_size,
                                             c.ngram_sizes, c.dropout)
        self.local_encoder = nn.ModuleList(
            HyenaBlock(c.d_model, c.sequence_length, c.hyena_order, c.filter_order,
                       c.conv_kernel_size, c.dropout, **(imported or {}))
            for _ in range(c.n_layers if imported else c.local_encoder_layers))
        # threshold=None: calibrated to merge_ratio (see DynamicMergingLayer for how they combine)
        self.merging = DynamicMergingLayer(
            c.d_model, c.merge_ratio, None, c.merge_mode, c.min_patch_size,
            c.max_patch_size, c.alphabet_size, causal=not c.bidirectional,
        ) if c.use_dynamic_merging else None
        self.global_stack = None if imported else StrippedHyenaOperator(
            c.d_model, c.sequence_length, c.hyena_order, c.num_heads, c.n_layers,
            c.attention_layer_indices, c.filter_order, c.conv_kernel_size, c.dropout,
            c.bidirectional)
        self.local_decoder = nn.ModuleList(
            HyenaBlock(c.d_model, c.sequence_length, c.hyena_order, c.filter_order,
                       c.conv_kernel_size, c.dropout, c.bidirectional)
            for _ in range(c.local_decoder_layers))
        self.final_norm = nn.LayerNorm(c.d_model)
        #: Recompute block activations in the backward pass (see ``run_block``).
        self.gradient_checkpointing = False
        # getattr: configs written before HyenaGLTConfig.gradient_checkpointing existed
        if c.gradient_checkpointing:
            self.gradient_checkpointing_enable()

    def _check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
                      ) -> None:
        if input_ids.dim() != 2 or input_ids.dtype.is_floating_point:
            raise ModelError(f"input_ids must be integer ids of shape (batch, length), got "
                             f"{input_ids.dtype} of shape {tuple(input_ids.shape)}")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ModelError(f"attention_mask shape {tuple(attention_mask.shape)} != input_ids "
                             f"shape {tuple(input_ids.shape)}")
        if attention_mask is not None and (self.merging is not None or self.config.rc_average) \
                and bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
            raise ModelError("attention_mask has padding before real tokens (left padding); "
                             "dynamic merging and reverse-complement averaging need right "
                             "padding (real tokens first, as the tokenizers and collate_batch "
                             "pad): pad on the right, or set use_dynamic_merging=False and "
                             "rc_average=False")
        if input_ids.numel() and (int(input_ids.min()) < 0
                                  or int(input_ids.max()) >= self.config.alphabet_size):
            raise ModelError(f"token ids must lie in [0, alphabet_size="
                             f"{self.config.alphabet_size}); got {int(input_ids.min())}.."
                             f"{int(input_ids.max())} (is the tokenizer larger than the model?)")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False
                ) -> HyenaGLTOutput:
        self._check_inputs(input_ids, attention_mask)
        hidden: list[torch.Tensor] | None = [] if output_hidden_states else None
        attentions: list[torch.Tensor] | None = [] if output_attentions else None
        x = self.embeddings(input_ids)
        if hidden is not None:
            hidden.append(x)
        checkpointing = self.gradient_checkpointing
        for block in self.local_encoder:
            x, _ = run_block(block, x, attention_mask, checkpointing=checkpointing)
            if hidden is not None:
                hidden.append(x)
        local = x
        boundaries = num_patches = aux_loss = None
        if self.global_stack is None:  # an imported HyenaDNA stack
            x = local
        elif self.merging is None:
            x = local + self.global_stack(local, attention_mask, hidden, attentions)
        else:
            merged = self.merging(local, attention_mask, input_ids)
            patch_states = self.global_stack(merged.patches, merged.patch_mask, hidden,
                                             attentions)
            x = local + self.merging.unmerge(patch_states, merged)
            boundaries, num_patches = merged.boundaries, merged.num_patches
            aux_loss = merged.aux_loss
        for block in self.local_decoder:
            x, _ = run_block(block, x, attention_mask, checkpointing=checkpointing)
            if hidden is not None:
                hidden.append(x)
        return HyenaGLTOutput(
            last_hidden_state=self.final_norm(x),
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=tuple(attentions) if attentions is not None else None,
            patch_boundaries=boundaries, num_patches=num_patches, aux_loss=aux_loss)


def check_task_alphabet(config: HyenaGLTConfig) -> None:
    """ConfigurationError when a protein task meets a nucleotide model.

    A DNA base model (``alphabet_size=22``) cannot embed the 33 ids of ``ProteinTokenizer``:
    fine-tuning it on proteins would fail at the first batch with ids out of range. And
    reverse-complement averaging would "complement" amino acids.
    """
    if config.task_type != "protein_function":
        return
    if config.alphabet_size < PROTEIN_ALPHABET_SIZE:
        raise ConfigurationError(
            f"task_type='protein_function' reads protein sequences ({PROTEIN_ALPHABET_SIZE} "
            f"ProteinTokenizer ids) but this model has alphabet_size={config.alphabet_size}, a "
            "nucleotide model (e.g. the DNA base model hyena-glt-base): its embeddings have no "
            "rows for amino acids. Start from a model pretrained on proteins "
            "(pretrained_model=DIR), or from random weights (FineTuner(pretrained_model=None, "
            f"...), or a new HyenaGLTConfig(alphabet_size={PROTEIN_ALPHABET_SIZE}, "
            "task_type='protein_function'))")
    if config.rc_average or config.rc_fusion != "logits":
        raise ConfigurationError("rc_average=True or rc_fusion='states' with "
                                 "task_type='protein_function': proteins have no reverse "
                                 "complement; set rc_average=False and rc_fusion='logits'")


def kmer_path_options(config: HyenaGLTConfig) -> dict[str, Any]:
    """What the sequence k-mer path counts: every 1..6-mer of nucleotides (5,460 columns, as
    the k-mer baseline), or for proteins the 1..2-mers of the 26 letters (702) and the letters
    of the 50 N- and C-terminal residues (where targeting signals sit)."""
    if config.task_type == "protein_function":
        return {"letters": len(ProteinTokenizer.alphabet), "sizes": (1, 2), "terminal": 50}
    return {"letters": 4, "sizes": (1, 2, 3, 4, 5, 6)}


class _HyenaGLTTaskModel(HyenaGLTPreTrainedModel):
    """Backbone + head; optional post-hoc reverse-complement averaging of the logits."""

    output_class: type = SequenceClassifierOutput
    per_position = False  # logits per position (flipped back after the RC pass)

    def __init__(self, config: HyenaGLTConfig) -> None:
        super().__init__(config)
        check_task_alphabet(config)
        self.backbone = HyenaGLTModel(config)
        self.head = self._build_head(config)
        self.kmer_path = self._build_kmer_path(config) if config.uses_kmer_path else None
        self.register_buffer("rc_table", complement_table(config.alphabet_size),
                             persistent=False)

    @property
    def fuses_strand_states(self) -> bool:
        """The head reads forward and reverse-complement states side by side (per-base heads
        with ``rc_fusion="states"``; both strands are then always read)."""
        return self.per_position and self.config.rc_fusion == "states"

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        raise NotImplementedError

    def _build_kmer_path(self, config: HyenaGLTConfig) -> nn.Module | None:
        warnings.warn(f"kmer_path is ignored by {type(self).__name__}", HyenaGLTWarning,
                      stacklevel=3)
        return None

    def _task_loss(self, logits: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False):
        """Logits (averaged with the reverse complement's if ``config.rc_average``, the
        k-mer path's included, so the prediction is the same on either strand); ``loss`` when
        ``labels`` are given (plus the weighted auxiliary entropy-model loss)."""
        out = self.backbone(input_ids, attention_mask, output_hidden_states, output_attentions)
        states = out.last_hidden_state
        both_strands = self.config.rc_average or self.fuses_strand_states
        if both_strands:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            rc_ids = reverse_complement(input_ids, mask, self.rc_table)
            rc_states = self.backbone(rc_ids, mask).last_hidden_state
        if not both_strands:
            logits = self.head(states, attention_mask)
        elif self.fuses_strand_states:
            logits = self.head(torch.cat([states, flip_positions(rc_states, mask)], -1),
                               attention_mask)
        else:
            logits = (self.head(states, attention_mask)
                      + self._aligned(self.head(rc_states, mask), mask)) / 2
        if self.kmer_path is not None:
            path = self.kmer_path(input_ids, attention_mask)
            if both_strands:
                path = (path + self._aligned(self.kmer_path(rc_ids, mask), mask)) / 2
            logits = logits + path
        return self._output(out, logits, labels, attention_mask)

    def _aligned(self, rc_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits of the reverse complement, per base put back in forward order."""
        return flip_positions(rc_logits, mask) if self.per_position else rc_logits

    def _output(self, out: HyenaGLTOutput, logits: torch.Tensor, labels: torch.Tensor | None,
                attention_mask: torch.Tensor | None):
        """The task output: ``loss`` when ``labels`` are given (plus the weighted auxiliary
        entropy-model loss of merging), and the backbone's extras."""
        loss = None
        if labels is not None:
            loss = self._task_loss(logits, labels, attention_mask)
            if out.aux_loss is not None and self.config.merge_aux_loss_weight > 0:
                loss = loss + self.config.merge_aux_loss_weight * out.aux_loss
        return self.output_class(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                 patch_boundaries=out.patch_boundaries,
                                 num_patches=out.num_patches, attentions=out.attentions,
                                 aux_loss=out.aux_loss)


class HyenaGLTForSequenceClassification(_HyenaGLTTaskModel):
    """``logits (B, num_classes)`` by pooling (``config.pooling``); cross-entropy on ``labels (B,)``."""

    output_class = SequenceClassifierOutput

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        return SequenceClassificationHead(config.d_model, config.num_classes, config.dropout,
                                          config.pooling)

    def _build_kmer_path(self, config: HyenaGLTConfig) -> nn.Module:
        return SequenceKmerPath(config.num_classes, **kmer_path_options(config))

    def _task_loss(self, logits, labels, attention_mask):
        return F.cross_entropy(logits.float(), labels.long())


class HyenaGLTForTokenClassification(_HyenaGLTTaskModel):
    """``logits (B, L, num_classes)``; cross-entropy on ``labels (B, L)``, -100 and padding
    ignored."""

    output_class = TokenClassifierOutput
    per_position = True

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        width = config.d_model * (2 if self.fuses_strand_states else 1)
        return TokenClassificationHead(width, config.num_classes, config.dropout)

    def _build_kmer_path(self, config: HyenaGLTConfig) -> nn.Module:
        return FrameKmerPath(config.num_classes, config.kmer_windows)

    def _task_loss(self, logits, labels, attention_mask):
        labels = labels.long()
        if attention_mask is not None:
            labels = labels.masked_fill(attention_mask == 0, -100)
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100)


class HyenaGLTForRegression(_HyenaGLTTaskModel):
    """``logits (B, output_dim)`` (the predictions); MSE on ``labels (B, output_dim)`` or
    ``(B,)`` when ``output_dim == 1``."""

    output_class = RegressionOutput

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        return RegressionHead(config.d_model, config.output_dim, config.dropout, config.pooling)

    def _build_kmer_path(self, config: HyenaGLTConfig) -> nn.Module:
        return SequenceKmerPath(config.output_dim, **kmer_path_options(config))

    def _task_loss(self, logits, labels, attention_mask):
        labels = labels.float().reshape(logits.shape[0], -1)
        if labels.shape != logits.shape:
            raise ModelError(f"regression labels of shape {tuple(labels.shape)} do not match "
                             f"predictions {tuple(logits.shape)} (output_dim="
                             f"{self.config.output_dim})")
        return F.mse_loss(logits.float(), labels)


class HyenaGLTForVariantEffect(_HyenaGLTTaskModel):
    """Variant effect from a reference/alternate pair of windows (supervised).

    Both windows go through the backbone as one batch; :class:`VariantEffectHead` reads the
    difference of their states at ``variant_offset`` and over the window.
    ``input_ids (B, L)`` is the alternate window, ``ref_input_ids (B, L')`` the reference one
    (an indel makes the lengths differ; the shorter is padded), ``variant_offset (B,)`` the
    variant's index in both -> ``logits (B, num_classes)``. ``num_classes == 1`` makes it a
    regression of a continuous effect score (MSE on ``labels (B,)``, as Hugging Face does for
    ``num_labels == 1``); otherwise cross-entropy on class ``labels (B,)``. Reverse-complement
    averaging (``rc_average``) is not applied.
    """

    output_class = SequenceClassifierOutput
    #: Batches must carry the reference window too (see ``training.objectives.model_inputs``).
    paired_inputs = True

    def __init__(self, config: HyenaGLTConfig) -> None:
        super().__init__(config)
        if config.rc_average:
            warnings.warn("rc_average is ignored by HyenaGLTForVariantEffect", HyenaGLTWarning,
                          stacklevel=2)

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        return VariantEffectHead(config.d_model, config.num_classes, config.dropout)

    def _task_loss(self, logits, labels, attention_mask):
        if self.config.num_classes == 1:
            return F.mse_loss(logits.float()[:, 0], labels.float())
        return F.cross_entropy(logits.float(), labels.long())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, *, ref_input_ids: torch.Tensor | None = None,
                ref_attention_mask: torch.Tensor | None = None,
                variant_offset: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> SequenceClassifierOutput:
        if ref_input_ids is None or variant_offset is None:
            raise ModelError("HyenaGLTForVariantEffect needs the reference window "
                             "(ref_input_ids) and the variant's index (variant_offset) besides "
                             "the alternate window (input_ids)")
        alt_mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        ref_mask = (ref_attention_mask if ref_attention_mask is not None
                    else torch.ones_like(ref_input_ids))
        length = max(input_ids.shape[1], ref_input_ids.shape[1])
        pad = self.config.pad_token_id

        def widen(tensor: torch.Tensor, value: int) -> torch.Tensor:
            return F.pad(tensor, (0, length - tensor.shape[1]), value=value)

        ids = torch.cat([widen(ref_input_ids, pad), widen(input_ids, pad)])
        mask = torch.cat([widen(ref_mask, 0), widen(alt_mask, 0)])
        out = self.backbone(ids, mask, output_hidden_states, output_attentions)
        ref_states, alt_states = out.last_hidden_state.chunk(2)
        ref_mask, alt_mask = mask.chunk(2)
        logits = self.head(ref_states, alt_states, variant_offset, ref_mask, alt_mask)
        return self._output(out, logits, labels, None)


class HyenaGLTForCausalLM(_HyenaGLTTaskModel):
    """Next-nucleotide language model: ``logits (B, L, alphabet_size)``.

    Causal configs: position t scores token t + 1; ``labels=input_ids`` is the usual call (the
    shift happens inside; -100, padding and ``attention_mask == 0`` are ignored).
    Bidirectional configs are a masked LM instead: position t scores token t, and the caller
    masks inputs (``[MASK]`` id 4) and sets ``labels`` to -100 except at masked positions.
    RC averaging is not applied: next-token logits of the reverse strand predict the
    *previous* base of the forward strand, so averaging them is not meaningful.
    """

    output_class = CausalLMOutput
    per_position = True

    def __init__(self, config: HyenaGLTConfig) -> None:
        super().__init__(config)
        if config.rc_average or config.rc_fusion == "states":
            warnings.warn("rc_average and rc_fusion are ignored by HyenaGLTForCausalLM "
                          "(reverse-strand next-token predictions do not align with forward "
                          "ones)", HyenaGLTWarning, stacklevel=2)

    def _build_head(self, config: HyenaGLTConfig) -> nn.Module:
        return nn.Linear(config.d_model, config.alphabet_size)

    def _task_loss(self, logits, labels, attention_mask):
        labels = labels.long().masked_fill(labels == self.config.pad_token_id, -100)
        if attention_mask is not None:
            labels = labels.masked_fill(attention_mask == 0, -100)
        if not self.config.bidirectional:  # position t predicts token t + 1
            logits, labels = logits[:, :-1], labels[:, 1:]
        return F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> CausalLMOutput:
        # The head is position-wise, so it is applied to the states directly.
        out = self.backbone(input_ids, attention_mask, output_hidden_states, output_attentions)
        return self._output(out, self.head(out.last_hidden_state), labels, attention_mask)

    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 100,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None, suppress_special_tokens: bool = True) -> torch.Tensor:
        """Sample a continuation of each prompt: ``(B, P)`` -> ``(B, P + max_new_tokens)``.

        See :func:`hyena_glt.model.generation.generate` for the arguments and the cost (one
        forward over the whole sequence per new token).
        """
        return generate(self, input_ids, max_new_tokens, temperature, top_k, top_p, seed,
                        suppress_special_tokens)

    @torch.no_grad()
    def sequence_log_likelihood(self, input_ids: torch.Tensor,
                                attention_mask: torch.Tensor | None = None,
                                reduction: str = "sum") -> torch.Tensor:
        """``(B,)`` log p(x_2..x_n | x_1) over real tokens (the first token has no context).

        For variant scoring: ``LL(alt) - LL(ref)``. ``reduction="mean"`` divides by the number
        of scored tokens.
        """
        if self.config.bidirectional:
            raise ModelError("sequence_log_likelihood needs a causal model; this config is "
                             "bidirectional (a masked LM)")
        if reduction not in ("sum", "mean"):
            raise ModelError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        logits = self(input_ids, attention_mask).logits[:, :-1].float()
        token_ll = logits.log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
        valid = (torch.ones_like(token_ll, dtype=torch.bool) if attention_mask is None
                 else attention_mask[:, 1:].bool())
        total = (token_ll * valid).sum(1)
        return total / valid.sum(1).clamp(min=1) if reduction == "mean" else total
