"""The ``hyena-glt`` command line: one subcommand per pipeline stage.

Each stage lives in its own module under ``hyena_glt.cli`` exposing ``register(subparsers)``,
which adds its subcommand(s) and sets ``func`` to a handler ``func(args) -> int``.
Errors of our own (bad input, bad config) print one clear line and exit 2, as argparse does for
a bad option; anything else is a bug and keeps its traceback. Subcommand modules import torch,
pandas and the like only inside their handlers, so ``hyena-glt --help`` starts in a fraction of
a second.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import HyenaGLTError

__all__ = ["main", "build_parser"]

#: Stage modules, in pipeline order; each provides ``register(subparsers)``.
COMMAND_MODULES = ("init", "ingest", "pretrain", "finetune", "evaluate", "compress", "predict",
                   "import_hyenadna")

#: Exit status for errors caused by the user's input or settings (as opposed to bugs).
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hyena-glt",
        description="Genomic language models: ingest FASTA/VCF/GFF, pretrain, fine-tune, "
        "compress, evaluate and report.",
    )
    parser.add_argument("--version", action="version", version=f"hyena-glt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (argparse's too, so callers in-process and the
    console script see the same status: 2 for a bad option, 0 for --help/--version)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return 0 if stop.code is None else stop.code if isinstance(stop.code, int) \
            else EXIT_USER_ERROR
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except HyenaGLTError as err:
        print(f"hyena-glt {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
