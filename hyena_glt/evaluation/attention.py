"""AttentionAnalyzer: what the striped stack looks at, per layer type.

- Attention blocks: the attention weights ``(B, H, K, K)`` (``K`` = patches when merging is on,
  else positions), as the model returns them with ``output_attentions=True``.
- Hyena blocks: the effective long-convolution filters, i.e. the impulse responses
  ``(n_filters, d_model, L)`` the implicit filter MLP generates for length ``L`` (they do not
  depend on the input), summarised by their mean absolute value per lag.
- Merging: the patch boundaries ``(B, L)`` (True where a patch starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import torch

from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import ModelError
from hyena_glt.model.hyena import HyenaOperator

__all__ = ["AttentionMaps", "AttentionAnalyzer"]


@dataclass
class AttentionMaps:
    """Attention weights per attention layer, Hyena impulse responses per Hyena operator,
    merge boundaries and the attention mask of the tokenized batch.

    Shapes (numpy): ``attentions[layer] (B, H, K, K)`` float32 (K = patches when merging, else
    L); ``hyena_filters[operator] (n_filters, d_model, L)`` float32; ``patch_boundaries (B, L)``
    bool; ``attention_mask (B, L)`` int64.
    """

    attentions: dict[str, np.ndarray] = field(default_factory=dict)
    hyena_filters: dict[str, np.ndarray] = field(default_factory=dict)
    patch_boundaries: np.ndarray | None = None
    attention_mask: np.ndarray | None = None


class AttentionAnalyzer:
    """Collect attention maps, Hyena filters and merge boundaries of a Hyena-GLT model.

    Args:
        model: a Hyena-GLT task model or backbone (anything whose forward accepts
            ``output_attentions=True`` and returns ``attentions``/``patch_boundaries``).
        tokenizer: used when :meth:`get_attention_maps` gets strings (default DNA).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: CharTokenizer | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer or DNATokenizer()

    def _attention_layer_names(self) -> list[str]:
        stack = getattr(getattr(self.model, "backbone", self.model), "global_stack", None)
        if stack is None:
            raise ModelError(f"{type(self.model).__name__} has no striped global stack")
        return [f"global_stack.layers.{i}" for i in stack.attention_layers]

    @torch.no_grad()
    def get_attention_maps(self, sequences: Sequence[str] | torch.Tensor) -> AttentionMaps:
        """Run ``sequences`` (strings, or ``(B, L)`` ids) and gather the maps.

        Returns:
            :class:`AttentionMaps` with ``attentions[name] (B, H, K, K)``,
            ``hyena_filters[name] (n_filters, d_model, L)``, ``patch_boundaries (B, L)``.
        """
        if isinstance(sequences, torch.Tensor):
            input_ids, mask = sequences, torch.ones_like(sequences)
        else:
            batch = self.tokenizer.batch_encode(list(sequences))
            input_ids, mask = batch["input_ids"], batch["attention_mask"]
        was_training = self.model.training
        self.model.eval()
        try:
            device = next(self.model.parameters()).device
            out = self.model(input_ids.to(device), attention_mask=mask.to(device),
                             output_attentions=True)
        finally:
            self.model.train(was_training)
        names = self._attention_layer_names()
        weights = out.attentions or ()
        maps = AttentionMaps(attentions={n: w.float().cpu().numpy()
                                         for n, w in zip(names, weights, strict=True)},
                             attention_mask=mask.cpu().numpy())
        length = input_ids.shape[1]
        for name, module in self.model.named_modules():
            if isinstance(module, HyenaOperator):
                maps.hyena_filters[name] = module.filter(length).float().cpu().numpy()
        if out.patch_boundaries is not None:
            maps.patch_boundaries = out.patch_boundaries.cpu().numpy()
        return maps

    @staticmethod
    def attention_figure(maps: AttentionMaps, layer: str, sequence: int = 0) -> go.Figure:
        """Head-averaged attention of one sequence in ``layer``: a Plotly heatmap (query rows,
        key columns)."""
        matrix = maps.attentions[layer][sequence].mean(0)
        figure = go.Figure(go.Heatmap(z=matrix, colorscale="Viridis", colorbar={"title": "weight"}))
        figure.update_layout(title=f"attention · {layer}", xaxis_title="key",
                             yaxis_title="query", yaxis_autorange="reversed")
        return figure

    @staticmethod
    def filter_figure(maps: AttentionMaps, max_lag: int | None = None) -> go.Figure:
        """Mean |impulse response| per lag of every Hyena operator: one Plotly line each."""
        figure = go.Figure()
        for name, response in maps.hyena_filters.items():
            profile = np.abs(response).mean(axis=(0, 1))[:max_lag]
            figure.add_trace(go.Scatter(x=np.arange(len(profile)), y=profile, mode="lines",
                                        name=name))
        figure.update_layout(title="Hyena long-filter impulse responses", xaxis_title="lag",
                             yaxis_title="mean |h|")
        return figure
