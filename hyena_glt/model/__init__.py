"""Hyena-GLT models: Hyena operator, striped Hyena/attention stack, BLT dynamic merging, heads.

Every name of ``shared/API.md``'s model section is importable from here.
"""

from .attention import MultiHeadAttention
from .blocks import AttentionBlock, HyenaBlock
from .embeddings import HashNGramEmbedding
from .fftconv import fft_conv
from .filters import ImplicitFilter
from .heads import (
    RegressionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    VariantEffectHead,
)
from .hyena import HyenaOperator
from .merging import DynamicMergingLayer, HyenaDynamicLayer, MergeResult
from .modeling import (
    HyenaGLTForCausalLM,
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
    HyenaGLTForVariantEffect,
    HyenaGLTModel,
)
from .outputs import (
    CausalLMOutput,
    HyenaGLTOutput,
    RegressionOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pretrained import HyenaGLTPreTrainedModel, load_backbone
from .striped import StripedHyenaOperator, StrippedHyenaOperator

__all__ = [
    "HyenaOperator",
    "StrippedHyenaOperator",
    "StripedHyenaOperator",
    "DynamicMergingLayer",
    "HyenaDynamicLayer",
    "MergeResult",
    "SequenceClassificationHead",
    "TokenClassificationHead",
    "RegressionHead",
    "VariantEffectHead",
    "HyenaGLTPreTrainedModel",
    "HyenaGLTModel",
    "HyenaGLTForSequenceClassification",
    "HyenaGLTForTokenClassification",
    "HyenaGLTForRegression",
    "HyenaGLTForCausalLM",
    "HyenaGLTForVariantEffect",
    "HyenaGLTOutput",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "RegressionOutput",
    "CausalLMOutput",
    "load_backbone",
    "fft_conv",
    "ImplicitFilter",
    "MultiHeadAttention",
    "HyenaBlock",
    "AttentionBlock",
    "HashNGramEmbedding",
]
