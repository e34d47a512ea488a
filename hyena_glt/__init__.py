"""Hyena-GLT: genomic language models (Hyena + BLT-style merging) and their workflow.

Top-level names are resolved on first use (module ``__getattr__``), so ``import hyena_glt``
and the ``hyena-glt --help`` that imports it stay fast: torch is loaded only by code that
builds or runs a model.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> submodule defining it (see shared/API.md).
_LAZY = {
    "HyenaGLTConfig": "config",
    "HyenaGLTError": "errors",
    "ConfigurationError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
    "TrainingError": "errors",
    "OptimizationError": "errors",
    "TokenizationError": "errors",
    "HyenaGLTWarning": "errors",
    "DNATokenizer": "data",
    "RNATokenizer": "data",
    "ProteinTokenizer": "data",
    "GenomicDataset": "data",
    "HyenaGLTModel": "model",
    "HyenaGLTForSequenceClassification": "model",
    "HyenaGLTForTokenClassification": "model",
    "HyenaGLTForRegression": "model",
    "HyenaGLTForCausalLM": "model",
    "HyenaGLTForVariantEffect": "model",
    "import_hyenadna": "model",
    "chunked_logits": "model",
    "ProteinFunctionDataset": "data",
    "GenomeAnnotationDataset": "data",
    "VariantEffectDataset": "data",
    "HyenaGLTTrainer": "training",
    "FineTuner": "training",
    "CurriculumLearner": "training",
    "MultiTaskLearner": "training",
    "GenomicMetrics": "evaluation",
    "ModelBenchmark": "evaluation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hyena_glt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
