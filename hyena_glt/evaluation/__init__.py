"""Evaluation: metrics, variant-effect scoring, baselines for every task type, benchmarks,
bootstrap intervals, analyzers and the report."""

from hyena_glt.evaluation.annotation import evaluate_token_classifier
from hyena_glt.evaluation.attention import AttentionAnalyzer, AttentionMaps
from hyena_glt.evaluation.baselines import (
    CNNBaseline,
    GenomicBenchmarksCNN,
    KmerLogisticRegression,
    KmerRidgeRegression,
)
from hyena_glt.evaluation.benchmark import (
    BenchmarkTask,
    ModelBenchmark,
    read_labelled_sequences,
    save_results,
    tidy_metrics,
)
from hyena_glt.evaluation.bootstrap import BootstrapSettings, bootstrap_metric, paired_bootstrap
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.models import (
    OnnxSequenceClassifier,
    TorchSequenceClassifier,
    load_classifier,
    load_model,
)
from hyena_glt.evaluation.regression import evaluate_regressor
from hyena_glt.evaluation.report import PerformanceAnalyzer
from hyena_glt.evaluation.token_baselines import (
    OrfKmerLogisticRegression,
    PerBaseCNN,
    PerBaseCNNBaseline,
)
from hyena_glt.evaluation.variant_baselines import ContextLogisticRegression
from hyena_glt.evaluation.variant_effect import (
    delta_log_likelihood,
    evaluate_variant_model,
    evaluate_variant_scores,
    position_group_folds,
    score_variants,
)

__all__ = [
    "GenomicMetrics",
    "ModelBenchmark",
    "BenchmarkTask",
    "TorchSequenceClassifier",
    "OnnxSequenceClassifier",
    "load_model",
    "evaluate_variant_model",
    "load_classifier",
    "read_labelled_sequences",
    "save_results",
    "tidy_metrics",
    "KmerLogisticRegression",
    "GenomicBenchmarksCNN",
    "CNNBaseline",
    "KmerRidgeRegression",
    "OrfKmerLogisticRegression",
    "PerBaseCNN",
    "PerBaseCNNBaseline",
    "ContextLogisticRegression",
    "BootstrapSettings",
    "bootstrap_metric",
    "paired_bootstrap",
    "PerformanceAnalyzer",
    "AttentionAnalyzer",
    "AttentionMaps",
    "score_variants",
    "delta_log_likelihood",
    "position_group_folds",
    "evaluate_variant_scores",
    "evaluate_token_classifier",
    "evaluate_regressor",
]
