"""Tokenizers, datasets and shard I/O."""
