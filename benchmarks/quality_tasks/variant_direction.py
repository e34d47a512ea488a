"""Direction of the zero-shot variant score on real sequence the base model knows.

BRCA1 is human and ``hyena-glt-base`` saw only Klebsiella (its perplexity on the BRCA1 region
is about 3.96, uniform guessing is 4), so a chance-level BRCA1 AUROC cannot tell a wrong sign
from a model with nothing to say. Here the sequence is real and in the model's domain: the
*Klebsiella pneumoniae* Kp1084 genome, held out of the base's training. In long open reading
frames (>= 1,200 nt, ATG to stop, either strand) one codon of the middle third gets a stop-gain
SNV (damaging, 1) and a synonymous SNV (0). If Δ = LL(alt) − LL(ref) < 0 means damaging, −Δ
ranks stop gains first (AUROC > 0.5). Both strands of every window are scored, so the rows
compare the forward score with the strand average (the zero-shot default) on the same variants;
intervals resample 100-bp position bins.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from hyena_glt.evaluation.bootstrap import bootstrap_metric, paired_bootstrap
from hyena_glt.evaluation.variant_effect import score_variants
from hyena_glt.ingest.vcf import ingest_variants, position_bins, variants_from_table
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.training import resolve_model

from . import make_rows, shared_data

__all__ = ["GENOME", "WINDOW", "MIN_ORF", "orf_variants", "run"]

GENOME = "genomes/klebsiella_pneumoniae/Klebs_Kp1084.fna.gz"
WINDOW = 1024
MIN_ORF = 1200
MAX_ORFS = 600  # ORFs drawn (seed 0) in a full run: 1,200 SNVs, about 5 CPU-minutes
QUICK = {"orfs": 12, "window": 64}
STOPS = ("TAA", "TAG", "TGA")
_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODE = {a + b + c: _AMINO[16 * i + 4 * j + k] for i, a in enumerate(_BASES)
        for j, b in enumerate(_BASES) for k, c in enumerate(_BASES)}
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _orfs(sequence: str, margin: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each ATG-to-stop ORF of at least :data:`MIN_ORF` nt on ``sequence``,
    at least ``margin`` nt from its ends (a variant window must fit)."""
    found = []
    for frame in range(3):
        start = None
        for p in range(frame, len(sequence) - 2, 3):
            codon = sequence[p:p + 3]
            if start is None and codon == "ATG":
                start = p
            elif start is not None and codon in STOPS:
                if p - start >= MIN_ORF and start >= margin and p + margin <= len(sequence):
                    found.append((start, p))
                start = None
    return found


def _snvs(codon: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(stop-gain, synonymous) single-base changes ``(index in codon, new base)``."""
    stop, same = [], []
    for k in range(3):
        for base in "ACGT".replace(codon[k], ""):
            new = codon[:k] + base + codon[k + 1:]
            if new in STOPS:
                stop.append((k, base))
            elif CODE[new] == CODE[codon]:
                same.append((k, base))
    return stop, same


def orf_variants(sequence: str, chrom: str, max_orfs: int | None, margin: int,
                 seed: int = 0) -> pd.DataFrame:
    """One stop-gain (label 1) and one synonymous (label 0) SNV per long ORF on either strand:
    columns ``chrom, pos`` (1-based, forward strand), ``ref, alt, label``."""
    rng = np.random.default_rng(seed)
    strands = {"+": sequence, "-": sequence.translate(_COMPLEMENT)[::-1]}
    orfs = [(s, a, b) for s, text in strands.items() for a, b in _orfs(text, margin)]
    if max_orfs is not None and len(orfs) > max_orfs:
        orfs = [orfs[i] for i in sorted(rng.choice(len(orfs), max_orfs, replace=False))]
    rows = []
    for strand, start, stop in orfs:
        text = strands[strand]
        first = start + 3 * int(rng.integers((stop - start) // 9, 2 * (stop - start) // 9))
        for at in range(first, stop, 3):
            gains, same = _snvs(text[at:at + 3])
            if gains and same:
                break
        else:
            continue
        for (k, base), label in ((gains[rng.integers(len(gains))], 1),
                                 (same[rng.integers(len(same))], 0)):
            index, ref, alt = at + k, text[at + k], base
            if strand == "-":  # back to forward-strand coordinates and alleles
                index, ref, alt = (len(text) - 1 - index, ref.translate(_COMPLEMENT),
                                   alt.translate(_COMPLEMENT))
            rows.append({"chrom": chrom, "pos": index + 1, "ref": ref, "alt": alt,
                         "label": label})
    return pd.DataFrame(rows, columns=["chrom", "pos", "ref", "alt", "label"])


def run(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """AUROC of −Δ (stop gain vs synonymous) for the forward and the strand-averaged score."""
    window = QUICK["window"] if quick else WINDOW
    genome = shared_data() / GENOME
    with gzip.open(genome, "rt") as handle:
        chrom = handle.readline()[1:].split()[0]
        sequence = "".join(line.strip() for line in handle).upper()
    table = orf_variants(sequence, chrom, QUICK["orfs"] if quick else MAX_ORFS, window)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "orf_variants.csv", index=False)
    shards = out_dir / f"orf_w{window}_{len(table)}"
    if not (shards / "manifest.json").is_file():
        ingest_variants(variants_from_table(out_dir / "orf_variants.csv", label_column="label"),
                        genome, shards, window=window, reverse_complement=True)
    base = HyenaGLTForCausalLM.from_pretrained(resolve_model("hyena-glt-base")).eval()
    scores = score_variants(base, shards, strand_average=True)
    labels = scores["label"].to_numpy(dtype=int)
    units = position_bins(scores["pos"].to_numpy())
    forward, both = -scores["delta_ll_forward"].to_numpy(), -scores["delta_ll"].to_numpy()
    rows: list[dict] = []
    for model, score, extra in (("hyena_glt_zero_shot_forward", forward, {}),
                                ("hyena_glt_zero_shot_both_strands", both,
                                 paired_bootstrap("auroc", labels, both, forward, units))):
        interval = bootstrap_metric("auroc", labels, score, units)
        metrics = {"auroc": interval.value, "auroc_ci_low": interval.low,
                   "auroc_ci_high": interval.high}
        if extra:
            metrics.update({"auroc_minus_forward": extra.delta,
                            "auroc_minus_forward_ci_low": extra.low,
                            "auroc_minus_forward_ci_high": extra.high})
        rows.extend(make_rows("variant_direction", model, seed, metrics, train_s=0.0, n_train=0,
                              n_test=len(labels), note=f"hyena-glt-base, -delta LL, {window}-nt "
                              f"windows, Kp1084 ORF stop gain vs synonymous"))
    return rows
