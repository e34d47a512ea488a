"""Model compression and deployment: quantization, pruning, distillation, export (ONNX,
``torch.export``).

Each method can measure what it did (:class:`CompressionReport`: parameters, non-zero
parameters, size on disk, CPU latency/throughput and accuracy before and after); compressed
models save and load without pickle (:func:`save_compressed` / :func:`load_compressed`).
"""

from .deployment import DeploymentConfig, ModelOptimizer
from .distillation import DistillationConfig, KnowledgeDistiller, distillation_kl
from .pruning import ModelPruner, PruningConfig, measured_sparsity
from .quantization import ModelQuantizer, QuantizationConfig
from .report import CompressionReport, ModelMeasurement, evaluate_accuracy, measure_model
from .runners import DeployedModel, ExportedProgramModel, OnnxModel
from .serialization import load_compressed, save_compressed
from .weight_only import WeightOnlyInt8Embedding, WeightOnlyInt8Linear

__all__ = [
    "ModelQuantizer",
    "QuantizationConfig",
    "ModelPruner",
    "PruningConfig",
    "measured_sparsity",
    "KnowledgeDistiller",
    "DistillationConfig",
    "distillation_kl",
    "ModelOptimizer",
    "DeploymentConfig",
    "OnnxModel",
    "ExportedProgramModel",
    "DeployedModel",
    "WeightOnlyInt8Linear",
    "WeightOnlyInt8Embedding",
    "CompressionReport",
    "ModelMeasurement",
    "measure_model",
    "evaluate_accuracy",
    "save_compressed",
    "load_compressed",
]
