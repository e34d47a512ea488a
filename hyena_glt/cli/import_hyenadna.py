"""``hyena-glt import-hyenadna SRC --out DIR``: a published HyenaDNA checkpoint as a Hyena-GLT
model directory (for ``finetune.pretrained: DIR`` or ``FineTuner(pretrained_model=DIR)``).

SRC is a local directory in either HyenaDNA layout (``config.json`` + ``weights.ckpt``, or the
``-hf`` repositories' ``config.json`` + ``model.safetensors``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from ..model.hyenadna import import_hyenadna  # torch loads only when the command runs

    out = import_hyenadna(args.source, args.out)
    if args.register:
        from ..training.registry import register_model

        register_model(args.register, out)
    logger.info("imported %s into %s", args.source, out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``import-hyenadna``."""
    parser = subparsers.add_parser(
        "import-hyenadna", help="convert a local HyenaDNA checkpoint directory",
        description="Convert a HyenaDNA checkpoint directory (original layout: config.json + "
        "weights.ckpt; Hugging Face layout: config.json + model.safetensors) into a Hyena-GLT "
        "model directory. Download one first, e.g. git clone "
        "https://huggingface.co/LongSafari/hyenadna-tiny-1k-seqlen-hf")
    parser.add_argument("source", type=Path, metavar="SRC", help="HyenaDNA checkpoint directory")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="Hyena-GLT model directory to write")
    parser.add_argument("--register", metavar="NAME", default=None,
                        help="also register DIR under NAME in the model registry")
    parser.set_defaults(func=_run)
