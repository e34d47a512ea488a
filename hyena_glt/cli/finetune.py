"""``hyena-glt finetune``: a pretrained model (directory or registered name) + a task head.

Training data are shard directories from ``hyena-glt ingest table|annotation|vcf`` (or the
CSV/TSV/Parquet files those read); the dataset class follows the shard kind (table ->
sequence labels, annotation -> per-base labels, variants -> ref/alt pairs). The model
directory ``--out`` (config.json, model.safetensors, tokenizer.json, metrics.jsonl,
training_config.json, and test_metrics.json with ``--test``) appears only when training is
done; checkpoints live in ``--run-dir`` (default ``OUT.run``) and a rerun resumes.

Binary tasks (per-base, two-class sequences) choose their decision threshold on the validation
part (``--val``, else ``--val-fraction`` of ``--train`` held out: whole windows, or per label)
as the MCC-best cut of P(class 1), stored in config.json (``extra.decision_threshold``) for
``hyena-glt predict`` and ``evaluate``.

``--auto`` chooses the learning rate among a small grid and the number of epochs on a
validation part, then retrains on all of ``--train`` (:mod:`hyena_glt.training.auto`); it costs
about one training per learning rate, plus one.

Exit status: 0 done; 2 bad input or settings, or a non-finite loss; 75 (EX_TEMPFAIL) stopped
by SIGTERM/SIGUSR1 after a checkpoint: rerun to resume.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from .arguments import fraction, open_fraction, positive_float, positive_int
from .pretrain import (
    add_training_options,
    config_fields,
    discard_resume_state,
    run_dir,
    run_training,
)

__all__ = ["register"]

logger = logging.getLogger(__name__)

#: ``hyena_glt.training.auto.DEFAULT_VAL_FRACTION``, here so ``--help`` does not import torch.
AUTO_VAL_FRACTION = 0.15


def learning_rates(text: str) -> tuple[float, ...]:
    """``--auto-lrs``: comma-separated learning rates, each > 0, none repeated."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("give comma-separated learning rates, e.g. "
                                         "3e-4,1e-3,3e-3")
    rates = tuple(positive_float(part) for part in parts)
    if len(set(rates)) < len(rates):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a learning rate (each costs a "
                                         "training)")
    return rates


TASK_TYPES = ("sequence_classification", "protein_function", "token_classification",
              "genome_annotation", "variant_effect", "regression")


def _check_table_labels(path: Path, task_type: str) -> None:
    """A table given as it is gets the ingester's label checks: a missing label (NA, NaN,
    empty), one class only, or scores given for classes is a named DataError, not a class."""
    from ..ingest.tables import encode_labels, read_labelled_table

    frame, text = read_labelled_table(path, ["sequence"])
    if "label" in frame.columns:
        task = "regression" if task_type == "regression" else "classification"
        encode_labels(frame["label"], task, path, text)


def _dataset(path: Path, task_type: str, max_length: int | None) -> Any:
    from ..data.datasets import (
        GenomeAnnotationDataset,
        GenomicDataset,
        ProteinFunctionDataset,
        VariantEffectDataset,
    )
    from ..data.shards import read_manifest
    from ..training.finetune import check_shard_kind

    if path.is_dir():
        kind = read_manifest(path)["kind"]
        check_shard_kind(task_type, kind, path)
        cls = {"table": GenomicDataset, "windows": GenomicDataset,
               "annotation": GenomeAnnotationDataset, "variants": VariantEffectDataset}[kind]
    else:
        cls = {"protein_function": ProteinFunctionDataset, "genome_annotation":
               GenomeAnnotationDataset, "token_classification": GenomeAnnotationDataset,
               "variant_effect": VariantEffectDataset}.get(task_type, GenomicDataset)
    if cls is GenomicDataset:
        return GenomicDataset(data_path=path, max_length=max_length, padding=None)
    return cls(path, max_length=max_length, padding=None)


def _run_finetune(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..training import FineTuner
    from ..training.auto import auto_finetune
    from ..training.finetune import TASK_SHARD_KINDS

    if not args.auto:
        given = [name for name, value in (("--auto-lrs", args.auto_lrs),
                                          ("--auto-val-fraction", args.auto_val_fraction))
                 if value is not None]
        if given:
            raise ConfigurationError(f"{' and '.join(given)} only applies with --auto: add "
                                     "--auto (about one training per learning rate, plus one)")
    if args.train.is_file() and TASK_SHARD_KINDS[args.task_type] == "table":
        _check_table_labels(args.train, args.task_type)
    train = _dataset(args.train, args.task_type, args.max_length)
    val = _dataset(args.val, args.task_type, args.max_length) if args.val else None
    test = _dataset(args.test, args.task_type, args.max_length) if args.test else None
    # Whole-number labels give their class count; a variant score (no classes) one output.
    num_classes = args.num_classes or getattr(train, "num_classes", None) or (
        1 if args.task_type == "variant_effect" else 2)
    overrides = config_fields(args)
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    finetuner = FineTuner(args.pretrained, task_type=args.task_type, num_classes=num_classes,
                          strategy=args.strategy, backbone_lr=args.backbone_lr,
                          head_lr=args.head_lr, **overrides)
    data_tokenizer = getattr(train, "tokenizer", None)
    if finetuner.tokenizer is not None and data_tokenizer is not None and \
            finetuner.tokenizer.type_name != data_tokenizer.type_name:
        raise ConfigurationError(f"{args.train} was tokenized as {data_tokenizer.type_name} "
                                 f"but {args.pretrained} is a {finetuner.tokenizer.type_name} "
                                 "model")

    def train_and_test() -> None:
        settings: dict[str, Any] = dict(
            num_epochs=args.epochs, output_dir=run_dir(args), model_dir=args.out,
            device=args.device, max_steps=args.max_steps, log_steps=args.log_steps,
            eval_steps=args.eval_steps, save_steps=args.save_steps,
            early_stopping_patience=args.early_stopping, num_workers=args.num_workers,
            val_fraction=args.val_fraction)
        if args.auto:
            tuned = auto_finetune(finetuner, train, val, learning_rates=args.auto_lrs,
                                  validation_fraction=args.auto_val_fraction or
                                  AUTO_VAL_FRACTION, metric=args.metric, **settings)
        else:
            tuned = finetuner
            finetuner.finetune(train, val, metric_for_best=args.metric or "eval_loss",
                               **settings)
        trainer = tuned.trainer
        if trainer is not None:
            discard_resume_state(trainer)
        if test is not None and trainer is not None:
            metrics = trainer.evaluate(test)
            logger.info("test: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            if trainer.context.is_main:
                (args.out / "test_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    return run_training(args, train_and_test)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained model on a labelled task",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, metavar="DIR_OR_NAME",
                        help="model directory or registered name (e.g. hyena-glt-base)")
    parser.add_argument("--train", type=Path, required=True, metavar="DATA",
                        help="training shard directory (or CSV/TSV/Parquet table)")
    parser.add_argument("--val", type=Path, default=None, metavar="DATA",
                        help="validation data: best model and early stopping")
    parser.add_argument("--val-fraction", type=fraction, default=0.0, metavar="F",
                        help="without --val, the share of --train held out (seeded; whole "
                        "windows, or per label) to pick the best model and the decision "
                        "threshold of a binary task (default 0: none; on the example's "
                        "per-base CDS 0.1 cost 0.11 test AUROC over 3 seeds)")
    parser.add_argument("--test", type=Path, default=None, metavar="DATA",
                        help="held-out data scored once at the end -> OUT/test_metrics.json")
    parser.add_argument("--task-type", required=True, choices=TASK_TYPES)
    parser.add_argument("--strategy", default="full",
                        choices=("full", "head_only", "gradual_unfreeze"))
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                        help="default: num_epochs of the config")
    parser.add_argument("--num-classes", type=positive_int, default=None, metavar="N",
                        help="default: the number of labels in the training data (1 for "
                        "variant_effect scores: a regression)")
    parser.add_argument("--backbone-lr", type=positive_float, default=None, metavar="LR",
                        help="learning rate of the pretrained backbone (default: the config's "
                             "learning_rate)")
    parser.add_argument("--head-lr", type=positive_float, default=None, metavar="LR",
                        help="learning rate of the new weights: the head and the k-mer path "
                             "(default: --backbone-lr)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N")
    parser.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                        help="truncate sequences to N tokens (default: keep whole)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML/JSON of HyenaGLTConfig fields to change (dropout, "
                        "warmup_steps, weight_decay, ...)")
    parser.add_argument("--auto", action="store_true",
                        help="choose the learning rate (x1/3, x1, x3 of --backbone-lr and "
                        "--head-lr) and the number of epochs (1..--epochs) on a validation "
                        "part (--val, else --auto-val-fraction of --train), by AUROC for two "
                        "classes, accuracy for more, loss for scores (or --metric); then "
                        "retrain on all of --train. Costs about len(grid)+1 trainings (4 by "
                        "default; with --val, len(grid)). The choice and every candidate's "
                        "score go into config.json (extra.auto)")
    parser.add_argument("--auto-lrs", type=learning_rates, default=None, metavar="LR,LR,...",
                        help="with --auto, the backbone learning rates to try instead (the "
                        "head keeps its ratio), e.g. 3e-4,1e-3,3e-3; each costs a training")
    parser.add_argument("--auto-val-fraction", type=open_fraction, default=None, metavar="F",
                        help=f"with --auto and no --val, the share of --train held out for the "
                        f"choice (seeded; per label, or whole windows; default "
                        f"{AUTO_VAL_FRACTION})")
    add_training_options(parser)
    # Unset, --metric means each mode's own default: eval_loss, or --auto's (see --auto).
    parser.set_defaults(func=_run_finetune, metric=None)
