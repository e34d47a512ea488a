"""``--threads``: every compute-heavy subcommand takes the CPU thread count of its Snakemake
rule (``--threads {threads}``), so a job uses the cores the scheduler gave it, no more."""

from __future__ import annotations

import argparse

from .arguments import positive_int

__all__ = ["add_threads_option", "apply_threads"]


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice); match the "
                        "Snakemake rule's threads")


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's intra-op thread count from ``--threads`` (when given)."""
    if args.threads is None:
        return
    import torch

    torch.set_num_threads(args.threads)
