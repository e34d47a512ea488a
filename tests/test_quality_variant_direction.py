"""benchmarks/quality_tasks/variant_direction.py: stop-gain vs synonymous SNVs in real ORFs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from quality_tasks import variant_direction  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _translate(orf: str) -> str:
    return "".join(variant_direction.CODE[orf[i:i + 3]] for i in range(0, len(orf), 3))


def test_each_long_orf_on_either_strand_gets_one_stop_gain_and_one_synonymous_snv():
    rng = np.random.default_rng(0)
    codons = [c for c, aa in variant_direction.CODE.items() if aa != "*"]
    body = "".join(rng.choice(codons, variant_direction.MIN_ORF // 3 + 10))
    orf = "ATG" + body + "TAA"
    spacer = "C" * 300  # no ATG on either strand
    sequence = spacer + orf + spacer + orf.translate(COMPLEMENT)[::-1] + spacer
    table = variant_direction.orf_variants(sequence, "chr", max_orfs=None, margin=100)
    assert list(table["label"]) == [1, 0, 1, 0]
    starts = {"+": len(spacer), "-": 2 * len(spacer) + len(orf)}
    for row in table.itertuples():
        index = row.pos - 1
        assert sequence[index] == row.ref != row.alt  # forward-strand coordinates and alleles
        mutated = sequence[:index] + row.alt + sequence[index + 1:]
        strand = "+" if index < starts["-"] else "-"
        start = starts[strand]
        text = mutated[start:start + len(orf)]
        if strand == "-":
            text = text.translate(COMPLEMENT)[::-1]
        protein = _translate(text)
        if row.label == 1:  # an in-frame stop before the ORF's own
            assert "*" in protein[:-1]
        else:
            assert protein == _translate(orf)


def test_quick_run_scores_the_forward_and_the_strand_averaged_delta(shared_data, tmp_path):
    rows = pd.DataFrame(variant_direction.run(seed=0, quick=True, out_dir=tmp_path))
    values = rows.set_index(["model", "metric"])["value"]
    forward = values["hyena_glt_zero_shot_forward", "auroc"]
    both = values["hyena_glt_zero_shot_both_strands", "auroc"]
    assert 0 <= forward <= 1 and 0 <= both <= 1
    assert values["hyena_glt_zero_shot_both_strands", "auroc_minus_forward"] == pytest.approx(
        both - forward)
    assert set(rows["task"]) == {"variant_direction"}
    table = pd.read_csv(tmp_path / "orf_variants.csv")
    assert (rows["n_test"] == len(table)).all() and table["label"].sum() * 2 == len(table)
