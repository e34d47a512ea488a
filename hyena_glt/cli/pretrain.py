"""``hyena-glt pretrain`` and ``hyena-glt register-model``.

``pretrain`` trains a ``HyenaGLTForCausalLM`` (next-nucleotide LM; a masked LM for
``bidirectional: true`` configs) on a "windows" shard directory from ``hyena-glt ingest fasta``,
through a sequence-length curriculum, and writes the model directory ``--out`` (config.json,
model.safetensors, tokenizer.json, metrics.jsonl, training_config.json) only when training is
complete. Checkpoints and the metrics log live in the run directory (``--run-dir``, default
``OUT.run``), which survives a failed or preempted job, so rerunning the same command resumes;
once the model directory is written the resume checkpoint is removed (metrics.jsonl stays).
Under ``torchrun --nproc_per_node N`` it trains with DDP (rank 0 writes).

Exit status: 0 done; 2 bad input or settings (one-line message), or a non-finite loss;
75 (EX_TEMPFAIL) stopped by SIGTERM/SIGUSR1 after saving a checkpoint: run the same command
again (Snakemake ``--retries``, SLURM requeue) to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigurationError
from .arguments import device, non_negative_int, positive_int
from .threads import add_threads_option, apply_threads

__all__ = ["register", "add_training_options", "run_training", "read_config_file",
           "config_fields", "discard_resume_state", "check_curriculum", "run_dir"]

logger = logging.getLogger(__name__)


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``pretrain`` and ``finetune``."""
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="MODEL_DIR",
                        help="model directory to write (appears only when training is done)")
    parser.add_argument("--run-dir", type=Path, default=None, metavar="DIR",
                        help="checkpoints/ and metrics.jsonl of the run; a rerun with the same "
                        "run directory resumes (default: MODEL_DIR.run)")
    parser.add_argument("--max-steps", type=positive_int, default=None, metavar="N",
                        help="stop after N optimizer steps")
    parser.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:N or auto (default)")
    add_threads_option(parser)
    parser.add_argument("--num-workers", type=non_negative_int, default=0, metavar="N",
                        help="DataLoader worker processes (default 0)")
    parser.add_argument("--log-steps", type=positive_int, default=10, metavar="N",
                        help="log loss/lr/tokens per second every N steps (default 10)")
    parser.add_argument("--eval-steps", type=positive_int, default=None, metavar="N",
                        help="also evaluate every N steps (always at each epoch end)")
    parser.add_argument("--save-steps", type=positive_int, default=None, metavar="N",
                        help="also checkpoint every N steps (always at each epoch end)")
    parser.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                        help="stop after PATIENCE evaluations without improvement")
    parser.add_argument("--metric", default="eval_loss",
                        help="validation metric that selects the best model (default eval_loss)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        dest="settings", help="set one config field (value read as YAML), "
                        "over --config; repeatable, e.g. --set d_model=128 --set dropout=0")


def read_config_file(path: Path | None) -> dict[str, Any]:
    """A YAML/JSON mapping of HyenaGLTConfig fields (plus ``curriculum`` for pretraining)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())  # YAML's message spans lines: keep to one
        raise ConfigurationError(f"{path}: cannot read the config file ({reason})") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of config fields")
    return data


def config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields of ``--config`` with each ``--set FIELD=VALUE`` applied over them.

    Values are read as YAML here and typed by ``HyenaGLTConfig`` (``1e-3`` included), so
    ``--set``, the config file and ``config.json`` share one reader of numbers.
    """
    fields = read_config_file(args.config)
    for setting in args.settings:
        name, sep, text = setting.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(f"--set {setting!r}: expected FIELD=VALUE, e.g. "
                                     "--set learning_rate=1e-3")
        try:
            fields[name.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            reason = " ".join(str(err).split())
            raise ConfigurationError(f"--set {setting!r}: unreadable value ({reason}); quote "
                                     "text values") from None
    return fields


def check_curriculum(stages: Any, config: Any, window: int | None, data: Path) -> Any:
    """A CurriculumLearner whose stages fit the model and the ingested windows, else None.

    Windows are cropped, never padded, to a stage: a stage longer than the windows would train
    at the window length while the log reports the stage's, so it is refused here.
    """
    from ..training.curriculum import CurriculumLearner

    if not stages:
        return None
    if not isinstance(stages, (str, list)):
        raise ConfigurationError(f"curriculum={stages!r}: give LENGTH:EPOCHS stages such as "
                                 "'1024:1,4096:1', or a list of {max_length, epochs} mappings")
    curriculum = (CurriculumLearner.from_string(stages) if isinstance(stages, str)
                  else CurriculumLearner(stages))
    longest = max(stage["max_length"] for stage in curriculum.stages)
    if longest > config.sequence_length:
        raise ConfigurationError(f"curriculum length {longest} exceeds the model's "
                                 f"sequence_length={config.sequence_length}; shorten the "
                                 "stage or raise sequence_length")
    if window is not None and longest > window:
        raise ConfigurationError(f"curriculum length {longest} exceeds the {window}-token "
                                 f"windows of {data}; shorten the stage or re-ingest with "
                                 f"--window {longest}")
    return curriculum


def discard_resume_state(trainer: Any) -> None:
    """Remove a finished run's resume checkpoint (its model directory is written): a later run
    into the same run directory, e.g. Snakemake re-running after a config change, then starts
    afresh instead of refusing a checkpoint made with other settings. metrics.jsonl and best/
    stay; an interrupted run keeps its checkpoint and resumes."""
    if trainer.context.is_main:
        shutil.rmtree(trainer.checkpoint_dir.parent, ignore_errors=True)


def run_dir(args: argparse.Namespace) -> Path:
    """The run directory: ``--run-dir``, else ``OUT.run``."""
    return args.run_dir or Path(f"{args.out}.run")


def run_training(args: argparse.Namespace, train: Callable[[], Any]) -> int:
    """Run ``train`` with the CLI's exit-status conventions and torch settings.

    A run that fails before its first checkpoint removes the run directory (and the output's
    parent folders) it created, so a user error leaves nothing behind; one with a checkpoint
    keeps it, so rerunning resumes.
    """
    import torch

    from ..io import remove_empty
    from ..training import PREEMPTED_EXIT_CODE, TrainingPreempted

    apply_threads(args)
    runs = run_dir(args)
    created = [path for path in (runs, *runs.absolute().parents, *args.out.absolute().parents)
               if not path.exists()]
    try:
        train()
    except TrainingPreempted as stop:
        logger.warning("%s", stop)
        return PREEMPTED_EXIT_CODE
    except BaseException:
        if runs in created and not (runs / "checkpoints").exists():
            shutil.rmtree(runs, ignore_errors=True)
        remove_empty(sorted(set(created) - {runs}, key=lambda p: -len(p.parts)))
        raise
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            with contextlib.suppress(RuntimeError):
                torch.distributed.destroy_process_group()
    return 0


def _run_pretrain(args: argparse.Namespace) -> int:
    from ..config import HyenaGLTConfig
    from ..data.datasets import ShardDataset
    from ..errors import DataError
    from ..model import HyenaGLTForCausalLM
    from ..training import HyenaGLTTrainer, register_model, seed_everything

    fields = config_fields(args)
    stages = fields.pop("curriculum", None)
    if args.curriculum:
        stages = args.curriculum
    fields.setdefault("task_type", "dna_sequence_modeling")
    seed = HyenaGLTConfig.from_dict(fields).seed  # a bad field stops before data is read
    train = ShardDataset(args.data, max_length=None, shuffle_buffer=args.shuffle_buffer,
                         seed=seed)
    if train.kind != "windows":
        raise DataError(f"pretraining needs a 'windows' shard directory (hyena-glt ingest "
                        f"fasta), this one holds {train.kind!r}", path=args.data[0])
    val = ShardDataset(args.val_data) if args.val_data else None
    tokenizer = train.tokenizer
    if tokenizer is not None:
        fields.setdefault("alphabet_size", len(tokenizer))
    config = HyenaGLTConfig.from_dict(fields)
    window = (train.manifest.get("metadata") or {}).get("parameters", {}).get("window")
    curriculum = check_curriculum(stages, config, window, args.data[0])
    seed_everything(config.seed)  # the same initial weights on every rank and every rerun
    model = HyenaGLTForCausalLM(config)
    trainer = HyenaGLTTrainer(
        model, config, train, val, tokenizer, run_dir(args),
        curriculum=curriculum, objective=args.objective, device=args.device,
        max_steps=args.max_steps, log_steps=args.log_steps, eval_steps=args.eval_steps,
        save_steps=args.save_steps, early_stopping_patience=args.early_stopping,
        metric_for_best=args.metric, num_workers=args.num_workers, model_dir=args.out)
    logger.info("pretraining %s parameters (%s objective) for %d steps",
                f"{model.num_parameters():,}", trainer.objective, trainer.total_steps)

    def train_and_register() -> None:
        trainer.train()
        discard_resume_state(trainer)
        if args.register and trainer.context.is_main:
            logger.info("registered %s -> %s in %s", args.register, args.out,
                        register_model(args.register, args.out))

    return run_training(args, train_and_register)


def _run_register(args: argparse.Namespace) -> int:
    from ..training import register_model

    print(register_model(args.name, args.directory, args.registry))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="pretrain a causal (or masked) LM on 'windows' shards",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", required=True, metavar="SHARD_DIR",
                        help="'windows' shard directories (hyena-glt ingest fasta), streamed "
                        "as one corpus")
    parser.add_argument("--val-data", type=Path, nargs="+", default=None, metavar="SHARD_DIR",
                        help="held-out 'windows' shards (e.g. a genome not trained on): eval "
                        "loss/perplexity, best model")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML/JSON of HyenaGLTConfig fields (model and training: d_model, "
                        "n_layers, learning_rate, batch_size, ...) and optionally 'curriculum'")
    parser.add_argument("--curriculum", default=None, metavar="STAGES",
                        help="length warm-up, e.g. '1024:1,4096:1' (LENGTH:EPOCHS) or "
                        "'1024:500s,4096:200s' (LENGTH:STEPS); overrides the config's")
    parser.add_argument("--objective", default="auto",
                        choices=("auto", "causal_lm", "masked_lm"),
                        help="default: masked_lm for bidirectional configs, else causal_lm")
    parser.add_argument("--shuffle-buffer", type=positive_int, default=10_000, metavar="ROWS",
                        help="rows shuffled in memory while streaming (default 10000)")
    parser.add_argument("--register", default=None, metavar="NAME",
                        help="register the finished model under NAME (e.g. hyena-glt-base)")
    add_training_options(parser)
    parser.set_defaults(func=_run_pretrain)

    reg = subparsers.add_parser(
        "register-model", help="give a model directory a name in the local model registry",
        description="Map NAME to DIR in the local model registry ($HYENA_GLT_MODEL_REGISTRY "
        "or ~/.cache/hyena_glt/models/registry.json) so FineTuner and `hyena-glt finetune "
        "--pretrained NAME` find it.")
    reg.add_argument("name", metavar="NAME")
    reg.add_argument("directory", type=Path, metavar="DIR")
    reg.add_argument("--registry", type=Path, default=None, metavar="FILE_OR_DIR",
                     help="registry to write (default: the first registry location)")
    reg.set_defaults(func=_run_register)
