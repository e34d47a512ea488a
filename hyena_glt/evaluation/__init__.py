"""Evaluation: metrics for every task type."""

from hyena_glt.evaluation.metrics import GenomicMetrics

__all__ = ["GenomicMetrics"]
