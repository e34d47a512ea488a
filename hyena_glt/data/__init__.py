"""Tokenizers, datasets and Parquet shard I/O (see docs/schemas.md for the shard layout)."""

from .datasets import (
    IGNORE_INDEX,
    GenomeAnnotationDataset,
    GenomicDataset,
    ProteinFunctionDataset,
    ShardDataset,
    VariantEffectDataset,
    collate_batch,
)
from .ngrams import hash_ngrams
from .tokenizers import (
    CharTokenizer,
    DNATokenizer,
    ProteinTokenizer,
    RNATokenizer,
    tokenizer_from_name,
)

__all__ = [
    "CharTokenizer",
    "DNATokenizer",
    "RNATokenizer",
    "ProteinTokenizer",
    "tokenizer_from_name",
    "hash_ngrams",
    "IGNORE_INDEX",
    "GenomicDataset",
    "ProteinFunctionDataset",
    "GenomeAnnotationDataset",
    "VariantEffectDataset",
    "ShardDataset",
    "collate_batch",
]
