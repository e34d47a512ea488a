"""Hyena-GLT models: Hyena operator, striped Hyena/attention stack, BLT dynamic merging, heads.

Every name of ``shared/API.md``'s model section is importable from here.
"""

from .attention import MultiHeadAttention
from .blocks import AttentionBlock, HyenaBlock
from .chunked import chunked_logits
from .embeddings import HashNGramEmbedding
from .fftconv import fft_conv
from .filters import ImplicitFilter
from .generation import generate
from .heads import (
    RegressionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
)
from .hyena import HyenaOperator
from .hyenadna import import_hyenadna
from .merging import DynamicMergingLayer, HyenaDynamicLayer, MergeResult
from .modeling import (
    PROTEIN_ALPHABET_SIZE,
    HyenaGLTForCausalLM,
    HyenaGLTForRegression,
    HyenaGLTForSequenceClassification,
    HyenaGLTForTokenClassification,
    HyenaGLTForVariantEffect,
    HyenaGLTModel,
    check_task_alphabet,
)
from .outputs import (
    CausalLMOutput,
    HyenaGLTOutput,
    ModelOutput,
    RegressionOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .pretrained import HyenaGLTPreTrainedModel, load_backbone
from .striped import StripedHyenaOperator, StrippedHyenaOperator
from .variant_head import VariantEffectHead

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
    "ModelOutput",
    "HyenaGLTOutput",
    "SequenceClassifierOutput",
    "TokenClassifierOutput",
    "RegressionOutput",
    "CausalLMOutput",
    "load_backbone",
    "check_task_alphabet",
    "PROTEIN_ALPHABET_SIZE",
    "generate",
    "chunked_logits",
    "import_hyenadna",
    "fft_conv",
    "ImplicitFilter",
    "MultiHeadAttention",
    "HyenaBlock",
    "AttentionBlock",
    "HashNGramEmbedding",
]
