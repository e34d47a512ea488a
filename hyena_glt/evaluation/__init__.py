"""Evaluation: metrics, variant-effect scoring, baselines, benchmarks, analyzers and the report."""

from hyena_glt.evaluation.attention import AttentionAnalyzer, AttentionMaps
from hyena_glt.evaluation.baselines import CNNBaseline, GenomicBenchmarksCNN, KmerLogisticRegression
from hyena_glt.evaluation.benchmark import (
    BenchmarkTask,
    ModelBenchmark,
    TorchSequenceClassifier,
    save_results,
)
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.report import PerformanceAnalyzer
from hyena_glt.evaluation.variant_effect import (
    delta_log_likelihood,
    evaluate_variant_scores,
    position_group_folds,
    score_variants,
)

__all__ = [
    "GenomicMetrics",
    "ModelBenchmark",
    "BenchmarkTask",
    "TorchSequenceClassifier",
    "save_results",
    "KmerLogisticRegression",
    "GenomicBenchmarksCNN",
    "CNNBaseline",
    "PerformanceAnalyzer",
    "AttentionAnalyzer",
    "AttentionMaps",
    "score_variants",
    "delta_log_likelihood",
    "position_group_folds",
    "evaluate_variant_scores",
]
