"""``hyena-glt predict MODEL INPUT --out DIR``: apply a model to the user's own data.

MODEL is a model directory (fine-tuned, compressed or an ONNX export) or a registered name
(``hyena-glt-base``). What is written into DIR follows the model's task and the input's kind:

- a sequence classifier or regressor on FASTA records or table rows -> ``predictions.parquet``
  and ``predictions.tsv`` (id, each class's probability and the predicted label, or the value);
- a per-base model on a genome FASTA -> ``probability.bedGraph`` (``probability.bw`` with
  ``--bigwig``) and ``features.bed``, contig by contig in overlapping windows (memory bounded
  by ``--batch-size`` x the window, whatever the contig length);
- a fine-tuned variant-effect model or a causal LM on a VCF/BCF (with ``--reference``) ->
  ``annotated.vcf.gz`` + ``.tbi``, every record kept, unscorable ones flagged (HGLT_SKIP);
- ``--embeddings``, any model directory, FASTA or table -> ``embeddings.parquet``.

DIR also gets ``summary.json`` (model, task, counts, threshold and settings). DIR appears only
when complete; on an error nothing is left behind (an old DIR stays as it was). Bad input
(a model of the wrong task for the input, a protein model on DNA, a VCF of another reference)
is one line naming the file and record, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from .arguments import device, non_negative_int, positive_int
from .threads import add_threads_option, apply_threads

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _predict(predictor: Any, args: argparse.Namespace, kind: str, out: Path) -> dict[str, Any]:
    """Write the outputs for this model and input into ``out``; returns the counts."""
    from ..errors import ConfigurationError
    from ..prediction import (
        annotate_vcf,
        predict_sequences,
        predict_tracks,
        read_sequences,
        write_embeddings,
    )

    if kind == "vcf":
        if args.embeddings:
            raise ConfigurationError("--embeddings are per sequence: give a FASTA or a table, "
                                     "not a VCF")
        if args.reference is None:
            raise ConfigurationError(f"{args.input} is a VCF/BCF: give the FASTA its positions "
                                     "refer to with --reference")
        return annotate_vcf(predictor, args.input, args.reference, out, window=args.window,
                            batch_size=args.batch_size)
    counts: dict[str, Any] = {}
    if predictor.task == "token_classification" and kind == "fasta":
        counts.update(predict_tracks(predictor, args.input, out, window=args.window,
                                     overlap=args.overlap, batch_size=args.batch_size,
                                     bigwig=args.bigwig, precision=args.precision))
    elif predictor.task in ("sequence_classification", "regression") or not args.embeddings:
        records = read_sequences(args.input, args.sequence_column, args.id_column)
        counts.update(predict_sequences(predictor, records, args.input, out, args.batch_size))
    if args.embeddings:
        records = read_sequences(args.input, args.sequence_column, args.id_column)
        counts.update(write_embeddings(predictor, records, args.input, out, args.batch_size))
    return counts


def _run_predict(args: argparse.Namespace) -> int:
    from ..io import atomic_directory
    from ..prediction import input_kind, load_predictor

    apply_threads(args)
    kind = input_kind(args.input)
    predictor = load_predictor(args.model, args.device)
    if args.reference is not None and kind != "vcf":
        logger.warning("--reference is only read for VCF input; %s is %s", args.input, kind)
    with atomic_directory(args.out) as tmp:
        counts = _predict(predictor, args, kind, tmp)
        summary = {"model": str(predictor.source), "task": predictor.task,
                   "input": str(args.input), "input_kind": kind,
                   "reference": str(args.reference) if args.reference else None,
                   "device": str(predictor.device), "outputs": sorted(
                       p.name for p in tmp.iterdir()) + ["summary.json"], **counts}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("wrote %s: %s", args.out, ", ".join(summary["outputs"]))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="apply a model to FASTA, a sequence table or a VCF",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL",
                        help="model directory (fine-tuned, compressed, ONNX export) or a "
                        "registered name such as hyena-glt-base")
    parser.add_argument("input", type=Path, metavar="INPUT",
                        help="FASTA (plain/gz/bgzf), CSV/TSV/Parquet table, or VCF/BCF")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help="output directory (written atomically)")
    parser.add_argument("--reference", type=Path, default=None, metavar="FASTA",
                        help="reference FASTA of a VCF/BCF input")
    parser.add_argument("--embeddings", action="store_true",
                        help="also write embeddings.parquet (mean final state per sequence, and "
                        "the head's pooled vector where it has one)")
    parser.add_argument("--device", type=device, default="auto",
                        help="auto (GPU if visible), cpu, cuda, cuda:N; bf16 autocast on GPU")
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                        help="sequences, windows or variants per forward pass (default 16)")
    parser.add_argument("--window", type=positive_int, default=None, metavar="BASES",
                        help="window length of per-base prediction and of variant scoring "
                        "(default: the model's input length; variants at most 1024)")
    parser.add_argument("--overlap", type=non_negative_int, default=None, metavar="BASES",
                        help="bases shared by neighbouring per-base windows (default window/8)")
    parser.add_argument("--bigwig", action="store_true",
                        help="also write probability.bw (needs pyBigWig: hyena-glt[bigwig])")
    parser.add_argument("--precision", type=positive_int, default=3, metavar="N",
                        help="decimals of the bedGraph probabilities (default 3)")
    parser.add_argument("--sequence-column", default="sequence", metavar="NAME",
                        help="sequence column of a table input (default 'sequence')")
    parser.add_argument("--id-column", default=None, metavar="NAME",
                        help="record id column of a table input (default: 'id' or 'name' when "
                        "present, else the row number)")
    add_threads_option(parser)
    parser.set_defaults(func=_run_predict)
