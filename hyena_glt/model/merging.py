"""BLT-style dynamic merging (Pagnoni et al. 2024, "Byte Latent Transformer").

Nucleotide-level states are grouped into variable-length *patches*: a new patch starts where the
next nucleotide is hard to predict (high next-token entropy of a small byte-level model, BLT's
"global threshold" rule), where entropy rises ("monotonic" rule), or where a learned score fires.
Patches are mean-pooled, the expensive global stack runs over patches, and its outputs are
un-merged back to every position (plus a skip connection from the local encoder), so
token-level heads still see ``L`` positions.

Causality. The decision "close the patch after position t" uses only the local state at ``t``
(which has seen positions ``<= t``) and a threshold that is *not* computed from the current
batch, so the patching of a prefix never depends on what follows it. Position ``t`` then reads
the global output of the latest patch that is complete at ``t``: its own patch if it closes at
``t``, otherwise the previous one (BLT's decoder likewise attends to preceding patches). With
every position its own patch (``merge_ratio=0``) this is exactly the unmerged model.

Every step is batched tensor work (cumsum, scatter_add, gather and a log-depth scan): no Python
loop over positions. Inference is deterministic (no sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigurationError
from .blocks import HyenaBlock

__all__ = ["MergeResult", "DynamicMergingLayer", "DynamicLayerOutput", "HyenaDynamicLayer",
           "patch_starts", "MERGE_MODES"]

MERGE_MODES = ("entropy", "monotonic", "learned")


def patch_starts(close_candidates: torch.Tensor, min_patch_size: int = 1,
                 max_patch_size: int | None = None) -> torch.Tensor:
    """Where patches start, enforcing patch sizes: ``(B, L) bool -> (B, L + 1) bool``.

    ``close_candidates[:, t]`` proposes to end the current patch after ``t``. A proposal is
    accepted if the patch already has ``>= min_patch_size`` positions; a patch is always closed
    when it reaches ``max_patch_size``. Column ``L`` says whether a patch would start right
    after the last position. Position 0 always starts a patch.

    With ``min_patch_size == 1`` this is closed form; otherwise the left-to-right rule is a
    finite-state machine over "distance from the patch start" (``max_patch_size`` states),
    evaluated by a parallel prefix scan of its transition tables (log2(L) steps).
    """
    batch, length = close_candidates.shape
    device = close_candidates.device
    max_size = max_patch_size if max_patch_size is not None else length + 1
    first = torch.ones(batch, 1, dtype=torch.bool, device=device)
    if min_patch_size <= 1:
        natural = torch.cat([first, close_candidates.bool()], dim=1)  # (B, L+1)
        index = torch.arange(length + 1, device=device).expand(batch, -1)
        segment_start = torch.where(natural, index, 0).cummax(dim=1).values
        return (index - segment_start) % max_size == 0
    # transition[b, t, d]: distance to the patch start at t+1, given distance d at t.
    distance = torch.arange(max_size, device=device)
    grown = distance + 1
    closes = (grown >= max_size) | (close_candidates.bool()[..., None] & (grown >= min_patch_size))
    scan = torch.where(closes, 0, grown.expand(batch, length, -1))  # (B, L, M)
    step = 1
    while step < length:  # Hillis-Steele scan: composition of maps is associative
        composed = torch.gather(scan[:, step:], -1, scan[:, :-step])
        scan = torch.cat([scan[:, :step], composed], dim=1)
        step *= 2
    distances = torch.cat([torch.zeros_like(first, dtype=torch.long), scan[..., 0]], dim=1)
    return distances == 0


@dataclass
class MergeResult:
    """What :class:`DynamicMergingLayer` produced, and what ``unmerge`` needs.

    Shapes: ``patches (B, K, d)``, ``patch_mask (B, K)`` bool, ``patch_ids (B, L)`` (patch of
    each position), ``read_index (B, L)`` (patch whose global output position t reads; -1 =
    none yet), ``boundaries (B, L)`` bool (True where a patch starts, real positions only),
    ``num_patches (B,)``, ``aux_loss`` (entropy model's next-token loss, or None).
    """

    patches: torch.Tensor
    patch_mask: torch.Tensor
    patch_ids: torch.Tensor
    read_index: torch.Tensor
    boundaries: torch.Tensor
    num_patches: torch.Tensor
    aux_loss: torch.Tensor | None = None


class DynamicMergingLayer(nn.Module):
    """Group positions into patches: ``(B, L, d) -> (B, K, d)`` and back with :meth:`unmerge`.

    How ``merge_ratio``, ``threshold`` and the patch sizes combine:

    * ``threshold=None`` (the default, and what the models use): the threshold is *calibrated*
      so that a ``merge_ratio`` fraction of positions is merged away (mean patch size
      ``1 / (1 - merge_ratio)``). Each training step moves it toward the score quantile that
      yields that ratio *after* the size bounds are applied (a feedback on the patches actually
      made, so ``min_patch_size`` does not inflate the ratio); at inference it is frozen. Until
      the first training step (``calibration_steps == 0``, a fresh layer) patches are evenly
      spaced at the target ratio, a content-free and causal start.
    * ``threshold=<number>``: BLT's fixed global threshold: a patch starts after every score
      above it, and it is never changed. The entropy model alone decides how much is merged
      (an untrained one is uncertain everywhere and merges nothing); ``merge_ratio`` is then
      only the switch (0 turns merging off).
    * ``min_patch_size`` / ``max_patch_size`` bound every patch, in both cases. A calibrated
      target outside the bounds (``1 / (1 - merge_ratio)`` below ``min_patch_size`` or above
      ``max_patch_size``) cannot be met and is refused.

    Args:
        d_model: width of the local states.
        merge_ratio: fraction of positions merged away; 0 makes every position its own patch.
        threshold: ``None`` to calibrate to ``merge_ratio``, or a fixed boundary threshold
            (nats of entropy in ``entropy`` mode). A buffer, saved with the weights.
        mode: ``"entropy"``, ``"monotonic"`` (entropy increase) or ``"learned"``.
        min_patch_size, max_patch_size: patch length bounds.
        alphabet_size: token ids the next-token (entropy) head predicts.
        causal: positions read only complete patches (see module docstring); False for
            bidirectional models, where each position reads its own patch.
        momentum: update rate of the calibrated threshold.

    Raises:
        ConfigurationError: an unknown mode, a ratio outside ``[0, 1)``, or a calibrated target
            the patch size bounds make impossible.
    """

    #: Buffers that checkpoints written before they existed lack (they keep their initial value).
    optional_state_keys = ("proposal_rate",)

    def __init__(self, d_model: int, merge_ratio: float = 0.5, threshold: float | None = None,
                 mode: str = "entropy", min_patch_size: int = 1, max_patch_size: int = 16,
                 alphabet_size: int = 33, causal: bool = True, momentum: float = 0.05) -> None:
        super().__init__()
        if mode not in MERGE_MODES:
            raise ConfigurationError(f"merge mode={mode!r}: must be one of {MERGE_MODES}")
        if not 0.0 <= merge_ratio < 1.0:
            raise ConfigurationError(f"merge_ratio={merge_ratio}: must be in [0, 1)")
        if not 1 <= min_patch_size <= max_patch_size:
            raise ConfigurationError(f"min_patch_size={min_patch_size}, max_patch_size="
                                     f"{max_patch_size}: need 1 <= min <= max")
        mean_size = 1 / (1 - merge_ratio)
        if threshold is None and merge_ratio > 0 and not (
                min_patch_size <= mean_size + 1e-9 and mean_size <= max_patch_size + 1e-9):
            raise ConfigurationError(
                f"merge_ratio={merge_ratio} asks for patches of {mean_size:.3g} positions on "
                f"average, which min_patch_size={min_patch_size} / max_patch_size="
                f"{max_patch_size} rule out; lower min_patch_size, raise max_patch_size, or set "
                f"merge_ratio to at least {1 - 1 / min_patch_size:.3g} and at most "
                f"{1 - 1 / max_patch_size:.3g}")
        self.merge_ratio, self.mode, self.causal = merge_ratio, mode, causal
        self.momentum = momentum
        self.calibrated = threshold is None
        self.min_patch_size, self.max_patch_size = min_patch_size, max_patch_size
        if mode == "learned":
            self.boundary_head = nn.Linear(d_model, 1)
        else:  # the output layer of BLT's small entropy model (the local encoder is its body)
            self.next_token_head = nn.Linear(d_model, alphabet_size)
        self.register_buffer("threshold", torch.tensor(0.0 if threshold is None else
                                                       float(threshold)))
        self.register_buffer("calibration_steps", torch.tensor(0, dtype=torch.long))
        # Share of positions whose score must exceed the threshold for the patches (after the
        # size bounds) to number (1 - merge_ratio) of the positions; adjusted by feedback.
        self.register_buffer("proposal_rate", torch.tensor(1.0 - merge_ratio))

    # --- boundaries -----------------------------------------------------------------------
    def boundary_scores(self, hidden: torch.Tensor, input_ids: torch.Tensor | None = None,
                        attention_mask: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(scores (B, L), aux_loss)``: score at t proposes a new patch at t + 1."""
        if self.mode == "learned":
            return self.boundary_head(hidden).squeeze(-1).float(), None
        logits = self.next_token_head(hidden).float()
        log_probs = logits.log_softmax(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        aux_loss = None
        if input_ids is not None and input_ids.shape[1] > 1:
            targets = input_ids[:, 1:].long()  # cross_entropy wants int64 class indices
            if attention_mask is not None:
                targets = targets.masked_fill(attention_mask[:, 1:] == 0, -100)
            aux_loss = F.cross_entropy(log_probs[:, :-1].transpose(1, 2), targets,
                                       ignore_index=-100)
        if self.mode == "monotonic":
            entropy = entropy - torch.cat([entropy[:, :1], entropy[:, :-1]], dim=1)
        return entropy.detach(), aux_loss

    @torch.no_grad()
    def _calibrate(self, scores: torch.Tensor, real: torch.Tensor, starts: torch.Tensor
                   ) -> None:
        """Move the threshold toward the score quantile that gives the target patch count.

        ``starts`` are the patch starts this batch got: when they came from the threshold, the
        proposal rate is corrected by the gap between the patches made and the target.
        """
        values = scores[real]
        if values.numel() == 0:
            return
        target = 1.0 - self.merge_ratio
        if self.calibration_steps > 0:  # these starts came from the threshold
            made = (starts & real).sum() / real.sum()
            self.proposal_rate.add_(target - made).clamp_(1 / values.numel(), 1.0)
        merged = 1.0 - float(self.proposal_rate)
        k = min(max(math.ceil(merged * values.numel()), 1), values.numel())
        # Midway between neighbouring order statistics, so no score of this batch sits exactly
        # on the threshold (where float noise of order 1e-7 could flip a boundary).
        upper = min(k + 1, values.numel())
        quantile = (values.kthvalue(k).values + values.kthvalue(upper).values) / 2
        first = self.calibration_steps == 0
        self.threshold.copy_(torch.where(
            first, quantile, self.threshold + self.momentum * (quantile - self.threshold)))
        self.calibration_steps += 1

    def _even_candidates(self, length: int, device: torch.device) -> torch.Tensor:
        """``(L,)`` closes spaced so that ``1 - merge_ratio`` of positions start a patch."""
        rate = 1.0 - self.merge_ratio
        t = torch.arange(length + 1, device=device, dtype=torch.float32)
        return torch.floor(t[1:] * rate) > torch.floor(t[:-1] * rate)

    # --- merge / unmerge --------------------------------------------------------------------
    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_ids: torch.Tensor | None = None) -> MergeResult:
        """``hidden (B, L, d)`` local states -> :class:`MergeResult` with ``(B, K, d)`` patches.

        ``input_ids`` (optional) gives the targets of the auxiliary next-token loss.
        """
        batch, length, width = hidden.shape
        real = (torch.ones(batch, length, dtype=torch.bool, device=hidden.device)
                if attention_mask is None else attention_mask.bool())
        scores, aux_loss = self.boundary_scores(hidden, input_ids, attention_mask)
        if self.merge_ratio == 0.0:  # no merging: every position closes its own patch
            starts = torch.ones(batch, length + 1, dtype=torch.bool, device=hidden.device)
        else:
            candidates = scores > self.threshold
            if self.calibrated:  # never calibrated: evenly spaced closes (tensor ops, exportable
                fresh = self.calibration_steps == 0  # with logical ops onnxruntime implements)
                candidates = (candidates & ~fresh) | (
                    self._even_candidates(length, hidden.device) & fresh)
            starts = patch_starts(candidates, self.min_patch_size, self.max_patch_size)
            if self.training and self.calibrated:
                self._calibrate(scores, real, starts[:, :length])
        closes = starts[:, 1:]
        starts = starts[:, :length]
        patch_ids = starts.long().cumsum(1) - 1
        num_patches = (starts & real).sum(1)
        read_index = torch.where(closes, patch_ids, patch_ids - 1) if self.causal else patch_ids

        if self.mode == "learned":  # straight-through: values unchanged, gradient to the score
            probability = torch.sigmoid(scores)
            confidence = torch.where(closes, probability, 1 - probability)
            hidden = hidden * (1 + confidence - confidence.detach())[..., None]
        # The one host sync: K is data-dependent. Exports take K = L (extra patches are
        # masked), so the exported graph has static shapes and identical outputs.
        n_patches = length if torch.compiler.is_exporting() else max(int(num_patches.max()), 1)
        index = patch_ids.clamp(max=n_patches - 1)
        weight = real.to(hidden.dtype)
        sums = hidden.new_zeros(batch, n_patches, width).scatter_add_(
            1, index[..., None].expand(-1, -1, width), hidden * weight[..., None])
        counts = weight.new_zeros(batch, n_patches).scatter_add_(1, index, weight)
        patches = sums / counts.clamp(min=1)[..., None]
        patch_mask = torch.arange(n_patches, device=hidden.device) < num_patches[:, None]
        return MergeResult(patches, patch_mask, patch_ids, read_index, starts & real,
                           num_patches, aux_loss)

    @staticmethod
    def unmerge(patch_states: torch.Tensor, merge: MergeResult) -> torch.Tensor:
        """``(B, K, d)`` global outputs -> ``(B, L, d)``: position t gets patch ``read_index[t]``
        (zeros before the first complete patch)."""
        width = patch_states.shape[-1]
        index = merge.read_index.clamp(0, patch_states.shape[1] - 1)
        gathered = torch.gather(patch_states, 1, index[..., None].expand(-1, -1, width))
        return gathered * (merge.read_index >= 0)[..., None].to(gathered.dtype)


@dataclass
class DynamicLayerOutput:
    """``hidden_states (B, L, d)``, ``boundaries (B, L)``, ``num_patches (B,)``, ``aux_loss``."""

    hidden_states: torch.Tensor
    boundaries: torch.Tensor
    num_patches: torch.Tensor
    aux_loss: torch.Tensor | None = None


class HyenaDynamicLayer(nn.Module):
    """Local Hyena block -> dynamic merging -> global Hyena block on patches -> un-merge + skip.

    ``(B, L, d) -> DynamicLayerOutput`` with ``(B, L, d)`` states: a one-layer BLT with Hyena
    mixers. The local block is causal (its states drive the entropy model); the global block is
    causal unless ``bidirectional``.
    """

    def __init__(self, d_model: int, l_max: int, merge_ratio: float = 0.5,
                 threshold: float | None = None, order: int = 2, filter_order: int = 64,
                 mode: str = "entropy", min_patch_size: int = 1, max_patch_size: int = 16,
                 alphabet_size: int = 33, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.local = HyenaBlock(d_model, l_max, order, filter_order, dropout=dropout)
        self.merge = DynamicMergingLayer(d_model, merge_ratio, threshold, mode, min_patch_size,
                                         max_patch_size, alphabet_size, causal=not bidirectional)
        self.global_block = HyenaBlock(d_model, l_max, order, filter_order, dropout=dropout,
                                       bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                input_ids: torch.Tensor | None = None) -> DynamicLayerOutput:
        """``x (B, L, d)``, ``attention_mask (B, L)``, ``input_ids (B, L)`` (targets of the
        entropy model's auxiliary loss) -> :class:`DynamicLayerOutput`."""
        local, _ = self.local(x, attention_mask)
        merged = self.merge(local, attention_mask, input_ids)
        patch_states, _ = self.global_block(merged.patches, merged.patch_mask)
        out = local + self.merge.unmerge(patch_states, merged)
        return DynamicLayerOutput(out, merged.boundaries, merged.num_patches, merged.aux_loss)
