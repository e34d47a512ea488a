"""Variant effect on the user's VCF/BCF: every record written back, scored or flagged.

Scores go into INFO fields declared in the output header with their meaning:

* ``HGLT_SCORE`` (Number=A): a fine-tuned :class:`~hyena_glt.model.HyenaGLTForVariantEffect`'s
  output for each ALT: P(class 1) of a two-class head, the value of a score head, 1 - P(class 0)
  of a head with more classes (:func:`~hyena_glt.evaluation.variant_effect.predict_variant_effects`);
* ``HGLT_DLL`` (Number=A): a causal LM's zero-shot log P(alt window) - log P(ref window)
  (:func:`~hyena_glt.evaluation.variant_effect.delta_log_likelihood`; < 0: the ALT makes the
  sequence less likely, the Evo 2 reading of "damaging"), averaged over both strands as
  ``score-variants`` does;
* ``HGLT_SKIP`` (Number=.): why some or all ALTs of the record were not scored: ``indel`` (the
  models score substitutions: REF and ALT of equal length), ``symbolic`` (``<DEL>``, ``*``,
  breakends), ``no_alt``, ``off_contig`` (contig not in the reference, or REF past its end),
  ``ref_mismatch`` (REF differs from the reference).

Windows are cut as ``hyena-glt ingest vcf`` cuts them (:func:`~hyena_glt.ingest.vcf.variant_windows`:
``window`` bases, the variant at ``window // 2``). Records stream through in chunks, so memory
does not grow with the VCF. Before any scoring, a VCF whose contigs are all missing from the
reference, or whose REF alleles mostly disagree with it, is refused as a VCF of another
reference. The output is BGZF with a tabix index (pysam).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pysam
import torch
from torch.utils.data import Dataset

from ..errors import DataError, TokenizationError
from ..evaluation.variant_effect import delta_log_likelihood, predict_variant_effects
from ..ingest.reference import open_reference
from ..ingest.variant_sources import Variant, is_symbolic, open_variant_file
from ..ingest.vcf import variant_windows
from ..progress import Progress
from .predictor import Predictor

__all__ = ["annotate_vcf", "check_reference", "INFO_SCORE", "INFO_DELTA", "INFO_SKIP",
           "SKIP_REASONS"]

logger = logging.getLogger(__name__)

INFO_SCORE, INFO_DELTA, INFO_SKIP = "HGLT_SCORE", "HGLT_DLL", "HGLT_SKIP"
SKIP_REASONS = ("indel", "symbolic", "no_alt", "off_contig", "ref_mismatch")
#: Records checked against the reference before scoring (a VCF of another build fails fast).
_CHECKED_RECORDS = 1000
#: ALT alleles scored together (then their records are written): bounds memory.
_CHUNK = 2048


def _record_problem(record: pysam.VariantRecord, fasta: pysam.FastaFile) -> str | None:
    """The record-level reason no ALT can be scored, or None."""
    if not record.alts:
        return "no_alt"
    if record.chrom not in fasta.references:
        return "off_contig"
    start, end = record.pos - 1, record.pos - 1 + len(record.ref)
    if end > fasta.get_reference_length(record.chrom):
        return "off_contig"
    if fasta.fetch(record.chrom, start, end).upper() != record.ref.upper():
        return "ref_mismatch"
    return None


def check_reference(vcf_path: str | Path, fasta: pysam.FastaFile, reference: str | Path) -> None:
    """Refuse a VCF that was called against another reference.

    Raises:
        DataError: no record's contig is in the reference, or more than half of the first
            records checked have a REF that differs from it (naming the first mismatch).
    """
    seen = checked = mismatched = 0
    first = ""
    with open_variant_file(Path(vcf_path)) as vcf:
        contigs = set()
        for record in vcf:
            seen += 1
            contigs.add(record.chrom)
            problem = _record_problem(record, fasta) if record.chrom in fasta.references else None
            checked += record.chrom in fasta.references
            if problem == "ref_mismatch":
                mismatched += 1
                first = first or (f"{record.chrom}:{record.pos} REF {record.ref}, reference "
                                  f"{fasta.fetch(record.chrom, record.pos - 1, record.pos - 1 + len(record.ref))}")
            if checked >= _CHECKED_RECORDS:
                break
    if seen and not checked:
        raise DataError(f"none of its contigs ({', '.join(sorted(contigs)[:5])}) is in the "
                        f"reference {reference} ({', '.join(fasta.references[:5])}): a VCF of "
                        "another reference; pass the FASTA it was called against with "
                        "--reference", path=vcf_path)
    if mismatched * 2 > checked:
        raise DataError(f"REF differs from the reference {reference} in {mismatched} of the "
                        f"first {checked} records (first: {first}): a VCF of another reference "
                        "build; pass the FASTA it was called against with --reference",
                        path=vcf_path)


class _Pairs(Dataset):
    """Ref/alt window items for :func:`predict_variant_effects` (labels unknown: NaN)."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ref, alt, offset = self.pairs[index]
        return {"ref_input_ids": torch.from_numpy(ref.astype(np.int64)),
                "alt_input_ids": torch.from_numpy(alt.astype(np.int64)),
                "variant_offset": torch.tensor(offset), "labels": torch.tensor(float("nan"))}


def _score(predictor: Predictor, pairs: list[tuple[np.ndarray, np.ndarray, int]],
           batch_size: int) -> np.ndarray:
    """One value per ref/alt pair: the fine-tuned score, or the zero-shot Δ log-likelihood."""
    with predictor.autocast():
        if predictor.task == "language_model":
            ref = torch.as_tensor(np.stack([p[0] for p in pairs]), dtype=torch.long)
            alt = torch.as_tensor(np.stack([p[1] for p in pairs]), dtype=torch.long)
            flip, pad = predictor.tokenizer.reverse_complement_ids, predictor.tokenizer.pad_token_id
            return sum(delta_log_likelihood(predictor.model, r, a, batch_size, "sum", pad)
                       for r, a in ((ref, alt), (flip(ref), flip(alt)))) / 2
        outputs, _ = predict_variant_effects(predictor.model, _Pairs(pairs), batch_size)
    if outputs.ndim == 1:
        return outputs
    return outputs[:, 1] if outputs.shape[1] == 2 else 1.0 - outputs[:, 0]


def _header_lines(predictor: Predictor, window: int) -> tuple[str, list[str]]:
    """The INFO field that holds this model's value, and the header lines declaring ours."""
    names = predictor.class_names
    if predictor.task == "language_model":
        field, meaning = INFO_DELTA, (
            f"Zero-shot log-likelihood change under the causal LM {predictor.source.name}: log "
            f"P(alt window) - log P(ref window), {window}-base windows centred on the variant, "
            "averaged over both strands; negative = ALT less likely (predicted damaging)")
    else:
        value = ("the head's score" if len(names) == 1 else f"P({names[1]})" if len(names) == 2
                 else f"1 - P({names[0]})")
        field, meaning = INFO_SCORE, (
            f"Score of the fine-tuned variant-effect model {predictor.source.name} for each "
            f"ALT: {value}, from {window}-base ref/alt windows centred on the variant")
    skip = ("Why ALT(s) of this record were not scored by hyena-glt predict: indel "
            "(substitutions only), symbolic, no_alt, off_contig (contig not in the reference or "
            "REF past its end), ref_mismatch (REF differs from the reference)")
    return field, [f'##INFO=<ID={field},Number=A,Type=Float,Description="{meaning}">',
                   f'##INFO=<ID={INFO_SKIP},Number=.,Type=String,Description="{skip}">']


def _annotated_line(record: pysam.VariantRecord, additions: list[str]) -> str:
    """The record's own VCF text with ``additions`` appended to INFO (records are copied as
    text: undeclared INFO tags, common in real VCFs, make htslib's record translation exit)."""
    columns = str(record).rstrip("\n").split("\t")
    if additions:
        columns[7] = ";".join(([] if columns[7] == "." else [columns[7]]) + additions)
    return "\t".join(columns) + "\n"


def annotate_vcf(predictor: Predictor, vcf_path: str | Path, reference: str | Path,
                 out_dir: Path, *, window: int | None = None, batch_size: int = 32
                 ) -> dict[str, Any]:
    """Write ``annotated.vcf.gz`` and its ``.tbi`` into ``out_dir`` (module docstring).

    Args:
        window: bases per window (default: the model's input length, at most 1,024).

    Returns:
        Counts: ``records`` (all written), ``records_scored``, ``alleles_scored`` and, per
        reason of :data:`SKIP_REASONS`, the records flagged with it; plus ``window``, ``field``.

    Raises:
        DataError: a model that scores no variants, a VCF of another reference, or an
            unsorted VCF (tabix cannot index it).
    """
    predictor.require(("variant_effect", "language_model"), "a VCF is scored by a "
                      "fine-tuned variant-effect model or zero-shot by a causal LM", vcf_path)
    if predictor.tokenizer.type_name == "protein":
        raise DataError(f"{predictor.source} is a protein model; variants on a DNA reference "
                        "need a DNA model", path=vcf_path)
    window = min(window or min(predictor.max_length, 1024), predictor.max_length)
    counts: Counter = Counter()
    plain = out_dir / "annotated.vcf"
    with open_reference(reference) as fasta:
        check_reference(vcf_path, fasta, reference)
        with open_variant_file(Path(vcf_path)) as vcf, open(plain, "w") as out, \
                Progress(desc="variants", unit="record") as bar:
            field, declared = _header_lines(predictor, window)
            *meta, columns = str(vcf.header).rstrip("\n").split("\n")
            out.write("\n".join([*meta, *declared, columns]) + "\n")
            pending: list[tuple[Any, list[int], list[str]]] = []
            pairs: list[tuple[np.ndarray, np.ndarray, int]] = []

            def flush() -> None:
                scores = iter(_score(predictor, pairs, batch_size) if pairs else [])
                for record, scored, additions in pending:
                    if scored:
                        values = [f"{next(scores):.6g}" if i in scored else "."
                                  for i in range(len(record.alts))]
                        additions = [f"{field}={','.join(values)}", *additions]
                    out.write(_annotated_line(record, additions))
                bar.update(len(pending))
                pending.clear()
                pairs.clear()

            for record in vcf:
                counts["records"] += 1
                reasons, scored = _alleles(predictor, record, fasta, window, pairs, vcf_path)
                counts.update(reasons)
                counts["records_scored"] += bool(scored)
                counts["alleles_scored"] += len(scored)
                skip = [f"{INFO_SKIP}={','.join(sorted(reasons))}"] if reasons else []
                pending.append((record, scored, skip))
                if len(pairs) >= _CHUNK:
                    flush()
            flush()
    try:  # BGZF-compresses annotated.vcf into annotated.vcf.gz (removing it) and indexes it
        pysam.tabix_index(str(plain), preset="vcf", force=True)
    except (OSError, pysam.utils.SamtoolsError) as err:
        raise DataError(f"cannot index the annotated VCF ({err}); sort the input by position "
                        "(bcftools sort)", path=vcf_path) from None
    unscored = {reason: counts[reason] for reason in SKIP_REASONS if counts[reason]}
    (logger.warning if unscored else logger.info)(
        "%d records written, %d scored (%d ALT alleles); flagged %s: %s", counts["records"],
        counts["records_scored"], counts["alleles_scored"], INFO_SKIP, unscored or "none")
    return {"records": counts["records"], "records_scored": counts["records_scored"],
            "alleles_scored": counts["alleles_scored"],
            **{reason: counts[reason] for reason in SKIP_REASONS}, "window": window,
            "field": field}


def _alleles(predictor: Predictor, record: pysam.VariantRecord, fasta: pysam.FastaFile,
             window: int, pairs: list, vcf_path: str | Path) -> tuple[set[str], list[int]]:
    """Queue the record's scorable ALTs in ``pairs``: (skip reasons, indices of queued ALTs)."""
    problem = _record_problem(record, fasta)
    if problem:
        return {problem}, []
    reasons, scored = set(), []
    for index, alt in enumerate(record.alts):
        if is_symbolic(alt):
            reasons.add("symbolic")
            continue
        if len(alt) != len(record.ref):
            reasons.add("indel")
            continue
        variant = Variant(record.chrom, record.pos, record.ref.upper(), alt.upper(),
                          source=str(vcf_path))
        ref_window, alt_window, offset = variant_windows(fasta, variant, window)
        try:
            pair = (predictor.tokenizer.encode_array(ref_window),
                    predictor.tokenizer.encode_array(alt_window), offset)
        except TokenizationError as err:
            raise variant.error(f"window around the variant: {err}") from None
        pairs.append(pair)
        scored.append(index)
    return reasons, scored
