"""``hyena-glt quantize|prune|distill|export``: compress a fine-tuned model directory.

Each command reads a model directory (``save_pretrained``), writes the compressed model
directory ``--out`` (atomically; quantized models as int8 safetensors + ``quantization.json``,
exports as ``model.onnx``, or ``model.pt2`` with ``--format torch_export``) and its measured compression report ``--out/compression_report.json``
(parameters, non-zero parameters, size on disk, CPU latency/throughput and accuracy before and
after on ``--val``), for the benchmark report's Pareto plot.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .arguments import (
    EXPORT_FORMATS,
    PRUNING_SCOPES,
    PRUNING_TYPES,
    QUANTIZATION_TYPES,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
    unit_interval,
)
from .threads import add_threads_option, apply_threads

__all__ = ["register", "REPORT_NAME"]

logger = logging.getLogger(__name__)

REPORT_NAME = "compression_report.json"


def _add_common(parser: argparse.ArgumentParser, model_help: str) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL_DIR", help=model_help)
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help=f"compressed model directory to write (with {REPORT_NAME})")
    parser.add_argument("--val", type=Path, required=True, metavar="DATA",
                        help="labelled validation data (CSV/TSV/Parquet or shard directory) "
                        "for the before/after report")
    parser.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                        help="truncate sequences (default: the model's sequence_length)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="default 32")
    add_threads_option(parser)


def _loader(path: Path, model: Any, args: argparse.Namespace, shuffle: bool = False):
    from torch.utils.data import DataLoader

    from ..data import GenomicDataset, collate_batch

    max_length = args.max_length or model.config.sequence_length
    dataset = GenomicDataset(data_path=path, max_length=max_length, padding=None)
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle,
                      collate_fn=collate_batch)


def _longest_sequence(path: Path, model: Any, args: argparse.Namespace) -> int:
    """Tokens in the longest sequence of ``path`` (at most the model's sequence_length)."""
    dataset = _loader(path, model, args).dataset
    return max(len(dataset[index]["input_ids"]) for index in range(len(dataset)))


def _load(directory: Path):
    from ..errors import OptimizationError
    from ..optimization import load_compressed

    model = load_compressed(directory)
    if getattr(model, "paired_inputs", False):
        raise OptimizationError(f"{directory} holds a {type(model).__name__}, which reads "
                                "ref/alt window pairs; the compression commands take "
                                "single-window models (sequence or token classification, "
                                "regression)")
    return model


def _finish(model: Any, report: Any, out: Path) -> int:
    from ..optimization import save_compressed

    if model is not None:
        save_compressed(model, out)
    path = report.save(out / REPORT_NAME)
    logger.info("wrote %s and %s", out, path)
    return 0


def _run_quantize(args: argparse.Namespace) -> int:
    from ..optimization import ModelQuantizer, QuantizationConfig

    apply_threads(args)
    model = _load(args.model)
    quantizer = ModelQuantizer(QuantizationConfig(quantization_type=args.type))
    quantized = quantizer.quantize(model, _loader(args.val, model, args))
    return _finish(quantized, quantizer.report, args.out)


def _run_prune(args: argparse.Namespace) -> int:
    from ..optimization import ModelPruner, PruningConfig

    apply_threads(args)
    model = _load(args.model)
    config = PruningConfig(pruning_type=args.type, sparsity=args.sparsity, scope=args.scope,
                           iterations=args.iterations, fine_tune_steps=args.fine_tune_steps,
                           learning_rate=args.learning_rate,
                           distillation_alpha=args.distillation_alpha)
    train = _loader(args.train, model, args, shuffle=True) if args.train else None
    pruner = ModelPruner(config)
    pruned = pruner.prune(model, train, validation_dataloader=_loader(args.val, model, args))
    return _finish(pruned, pruner.report, args.out)


def _run_distill(args: argparse.Namespace) -> int:
    from ..optimization import DistillationConfig, KnowledgeDistiller

    apply_threads(args)
    teacher = _load(args.model)
    changes: dict[str, Any] = {"attention_layers": None}  # default striping of the new depth
    if args.student_d_model is not None:
        changes["d_model"] = args.student_d_model
    if args.student_layers is not None:
        changes["n_layers"] = args.student_layers
    student_config = teacher.config.replace(**changes)
    student = type(teacher)(student_config)
    distiller = KnowledgeDistiller(DistillationConfig(
        temperature=args.temperature, alpha=args.alpha, distillation_type=args.type,
        steps=args.steps, learning_rate=args.learning_rate))
    distiller.distill(teacher, student, _loader(args.train, teacher, args, shuffle=True),
                      validation_dataloader=_loader(args.val, teacher, args))
    return _finish(student, distiller.report, args.out)


def _run_export(args: argparse.Namespace) -> int:
    from ..io import atomic_directory
    from ..optimization import DeploymentConfig, ModelOptimizer

    apply_threads(args)
    model = _load(args.model)
    if args.length is None:  # fit the data: padding 251-nt promoters to 2,048 wastes 8x
        args.length = _longest_sequence(args.val, model, args)
    args.max_length = args.max_length or args.length  # validation inputs fit the export
    name = "model.pt2" if args.format == "torch_export" else "model.onnx"
    with atomic_directory(args.out) as tmp:
        optimizer = ModelOptimizer(DeploymentConfig(
            export_format=args.format, optimization_level=args.optimization_level,
            sequence_length=args.length, output_path=str(tmp / name)))
        runner = optimizer.optimize(model, validation_dataloader=_loader(args.val, model, args))
        optimizer.report.extra["export_path"] = str(args.out / name)
        optimizer.report.save(tmp / REPORT_NAME)
    logger.info("wrote %s (max |export - PyTorch| = %.3g)", args.out, runner.max_abs_diff)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``quantize``, ``prune``, ``distill`` and ``export``."""
    parser = subparsers.add_parser("quantize", help="post-training quantization (int8/fp16)")
    _add_common(parser, "fine-tuned model directory")
    parser.add_argument("--type", choices=QUANTIZATION_TYPES, default="dynamic",
                        help="dynamic int8 linear layers (default), weight-only int8 "
                        "(dequantized per layer), or a float16/bfloat16 cast")
    parser.set_defaults(func=_run_quantize)

    parser = subparsers.add_parser("prune", help="magnitude or structured pruning")
    _add_common(parser, "fine-tuned model directory")
    parser.add_argument("--type", choices=PRUNING_TYPES, default="magnitude")
    parser.add_argument("--sparsity", type=fraction, default=0.5, help="in [0, 1); default 0.5")
    parser.add_argument("--scope", choices=PRUNING_SCOPES, default="global")
    parser.add_argument("--iterations", type=positive_int, default=1, metavar="N")
    parser.add_argument("--fine-tune-steps", type=non_negative_int, default=0, metavar="N",
                        help="training batches after each pruning step (needs --train)")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-4, metavar="LR")
    parser.add_argument("--train", type=Path, default=None, metavar="DATA")
    parser.add_argument("--distillation-alpha", type=unit_interval, default=0.0, metavar="A",
                        help="fine-tune toward the unpruned model's soft outputs with this "
                        "weight in [0, 1] (default 0: labels only)")
    parser.set_defaults(func=_run_prune)

    parser = subparsers.add_parser("distill", help="distil a model into a smaller student")
    _add_common(parser, "teacher model directory")
    parser.add_argument("--train", type=Path, required=True, metavar="DATA")
    parser.add_argument("--student-d-model", type=positive_int, default=None, metavar="N",
                        help="student width (default: the teacher's)")
    parser.add_argument("--student-layers", type=positive_int, default=None, metavar="N",
                        help="student global layers (default: the teacher's)")
    parser.add_argument("--type", choices=("response", "feature"), default="response")
    parser.add_argument("--temperature", type=positive_float, default=4.0)
    parser.add_argument("--alpha", type=unit_interval, default=0.7)
    parser.add_argument("--steps", type=positive_int, default=500, metavar="N")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-3, metavar="LR")
    parser.set_defaults(func=_run_distill)

    parser = subparsers.add_parser("export", help="ONNX (or torch.export) export, verified "
                                   "against PyTorch")
    _add_common(parser, "model directory (float or weight-only int8 weights)")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                        help="onnx (default; ONNX Runtime) or torch_export (a .pt2 archive, "
                        "the fallback for ops without an ONNX form)")
    parser.add_argument("--optimization-level", choices=("none", "basic", "extended", "all"),
                        default="all", help="ONNX Runtime graph optimisation (default all)")
    parser.add_argument("--length", type=positive_int, default=None, metavar="N",
                        help="exported (fixed) sequence length; default: the longest "
                        "sequence of --val (shorter inputs are padded, longer ones refused)")
    parser.set_defaults(func=_run_export)
