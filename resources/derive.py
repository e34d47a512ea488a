"""Rebuild the derived example inputs in resources/ from ../shared/data (see SOURCES.md).

Run from the repository root: ``python resources/derive.py [SHARED_DATA_DIR]``.
Copies are byte-for-byte; the two derived files are written deterministically
(gzip with mtime 0, BGZF via pysam), so re-running gives identical bytes.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import pandas as pd
import pysam
from sklearn.model_selection import train_test_split

RESOURCES = Path(__file__).resolve().parent

#: (source under shared/data, destination under resources/) copied byte-for-byte.
COPIES = [
    ("genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz", "genomes/NC_045512.2.fa.gz"),
    (
        "genome_annotation/sars_cov_2_NC_045512.2/GCF_009858895.2_ASM985889v3_genomic.gff3.gz",
        "annotation/GCF_009858895.2_ASM985889v3_genomic.gff3.gz",
    ),
    (
        "genome_annotation/arabidopsis_chloroplast_NC_000932.1/NC_000932.1.fa.gz",
        "genomes/NC_000932.1.fa.gz",
    ),
    (
        "genome_annotation/arabidopsis_chloroplast_NC_000932.1/NC_000932.1.gff3.gz",
        "annotation/NC_000932.1.gff3.gz",
    ),
    ("variants/brca1_grch37/ref_brca1.fa.gz", "variants/ref_brca1.fa.gz"),
    (
        "variants/brca1_grch37/brca1_1kgPhase3_variants.vcf.gz",
        "variants/brca1_1kgPhase3_variants.vcf.gz",
    ),
    (
        "variants/brca1_sge_findlay2018/brca1_sge_variants.csv.gz",
        "variants/brca1_sge_variants.csv.gz",
    ),
]

KLEBSIELLA_SOURCE = "genomes/klebsiella_pneumoniae/Klebs_HS11286.fna.gz"
KLEBSIELLA_RECORD = "CP003200.1"
KLEBSIELLA_LENGTH = 200_000
KLEBSIELLA_DEST = "genomes/Klebs_HS11286.CP003200.1_1-200000.fa.gz"

PROMOTERS_SOURCE = "genomic_benchmarks/human_nontata_promoters/test.csv.gz"
PROMOTERS_ROWS = 2_000
PROMOTERS_SEED = 0
PROMOTERS_DEST = "promoters/human_nontata_promoters.test_subset2000.csv.gz"

LINE_WIDTH = 80


def slice_klebsiella(shared: Path) -> None:
    """First KLEBSIELLA_LENGTH bp of the HS11286 chromosome, 80-column FASTA, BGZF + indexes."""
    with pysam.FastaFile(str(shared / KLEBSIELLA_SOURCE)) as fasta:
        sequence = fasta.fetch(KLEBSIELLA_RECORD, 0, KLEBSIELLA_LENGTH)
    header = (
        f">{KLEBSIELLA_RECORD}_1-{KLEBSIELLA_LENGTH} bases 1-{KLEBSIELLA_LENGTH} of "
        f"{KLEBSIELLA_RECORD} Klebsiella pneumoniae subsp. pneumoniae HS11286 chromosome"
    )
    lines = [header] + [sequence[i : i + LINE_WIDTH] for i in range(0, len(sequence), LINE_WIDTH)]
    plain = RESOURCES / (KLEBSIELLA_DEST.removesuffix(".gz"))
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
    plain.unlink()


def subset_promoters(shared: Path) -> None:
    """PROMOTERS_ROWS rows, stratified by label, seeded; rows kept in source order."""
    table = pd.read_csv(shared / PROMOTERS_SOURCE)
    subset, _ = train_test_split(
        table,
        train_size=PROMOTERS_ROWS,
        stratify=table["label"],
        random_state=PROMOTERS_SEED,
    )
    subset = subset.sort_index()
    destination = RESOURCES / PROMOTERS_DEST
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
            handle.write(subset.to_csv(index=False, lineterminator="\n").encode())


def example_promoters() -> None:
    """The first 4 rows of each label of the promoter subset, as FASTA (the predict example)."""
    table = pd.read_csv(RESOURCES / PROMOTERS_DEST)
    lines = []
    for index, row in table.groupby("label").head(4).iterrows():  # source order kept
        lines.append(f">row{index + 1}_label{row['label']} row {index + 1} of "
                     f"{Path(PROMOTERS_DEST).name}")
        lines.extend(row["sequence"][i:i + 60] for i in range(0, len(row["sequence"]), 60))
    (RESOURCES / "promoters" / "example_promoters.fa").write_text("\n".join(lines) + "\n")


def main(shared: Path) -> None:
    for source, destination in COPIES:
        target = RESOURCES / destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / source, target)
    slice_klebsiella(shared)
    subset_promoters(shared)
    example_promoters()
    # Indexes next to every BGZF FASTA, so readers never need to write into resources/.
    for fasta in sorted((RESOURCES / "genomes").glob("*.fa.gz")) + [
        RESOURCES / "variants" / "ref_brca1.fa.gz"
    ]:
        pysam.faidx(str(fasta))


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
