"""Prediction: apply a fine-tuned, compressed or exported model (or a pretrained LM) to the user's
sequences, genomes and VCFs, writing files the field's tools open (Parquet/TSV tables,
bedGraph/BED/bigWig tracks, annotated VCFs)."""

from .inputs import input_kind, read_sequences
from .predictor import Predictor, load_predictor
from .sequences import predict_sequences, write_embeddings
from .tracks import memory_budget_bases, predict_tracks, split_points, window_starts
from .variants import annotate_vcf, check_reference

__all__ = [
    "Predictor",
    "load_predictor",
    "input_kind",
    "read_sequences",
    "predict_sequences",
    "write_embeddings",
    "predict_tracks",
    "window_starts",
    "split_points",
    "memory_budget_bases",
    "annotate_vcf",
    "check_reference",
]
