"""Throughput of FASTA ingestion (read + tokenize + write shards) next to ``zcat > /dev/null``.

Builds once, under ``benchmarks/out/``, a large ``.fa.gz`` from the four real Klebsiella
genomes in ``shared/data/genomes`` repeated with renamed records (``copy<k>_<id>``) until the
compressed file reaches ``--target-mb`` (default 200 MB), then, in one run, times plain gzip
decompression and ``hyena_glt.ingest.ingest_fasta`` on the same file and prints MB/s of each
(MB of the compressed file per second) and their ratio. Target: ratio >= 0.5.

The file is multi-member gzip: every record's sequence is compressed once as its own member
and reused for each copy, behind a freshly compressed renamed header, so building it takes
seconds. Any gzip reader (zcat, zlib, htslib) reads it as one stream.

Run: ``.venv/bin/python benchmarks/bench_tokenize.py [--target-mb 200] [--window 1024]``
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pysam

from hyena_glt.data.shards import read_manifest
from hyena_glt.ingest.fasta import ingest_fasta

ROOT = Path(__file__).resolve().parent
GENOMES = ROOT.parents[1] / "shared" / "data" / "genomes" / "klebsiella_pneumoniae"
LINE = 80


def build_corpus(target_mb: float, out: Path) -> Path:
    """The cached benchmark file: Klebsiella genomes repeated until ``target_mb`` compressed."""
    path = out / f"klebsiella_x_{target_mb:g}MB.fa.gz"
    if path.exists():
        return path
    sources = sorted(GENOMES.glob("*.fna.gz"))
    if not sources:
        sys.exit(f"no genomes found under {GENOMES}")
    bodies = []  # (record id, description, gzip member of the wrapped sequence)
    for source in sources:
        with pysam.FastxFile(str(source)) as handle:
            for entry in handle:
                seq = entry.sequence
                wrapped = "\n".join(seq[i:i + LINE] for i in range(0, len(seq), LINE)) + "\n"
                bodies.append((entry.name, entry.comment or "",
                               gzip.compress(wrapped.encode(), compresslevel=6, mtime=0)))
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    size, copy = 0, 0
    with open(tmp, "wb") as handle:
        while size < target_mb * 1e6:
            for name, comment, body in bodies:
                header = gzip.compress(f">copy{copy}_{name} {comment}\n".encode(), mtime=0)
                handle.write(header)
                handle.write(body)
                size += len(header) + len(body)
            copy += 1
    tmp.rename(path)
    print(f"built {path} ({size / 1e6:.1f} MB, {copy} copies of {len(bodies)} records)")
    return path


def time_zcat(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["zcat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-mb", type=float, default=200.0,
                        help="compressed size of the benchmark file (default 200)")
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    args = parser.parse_args()

    corpus = build_corpus(args.target_mb, args.out)
    megabytes = corpus.stat().st_size / 1e6
    zcat_s = time_zcat(corpus)
    shards = Path(tempfile.mkdtemp(dir=args.out)) / "windows"
    try:
        start = time.perf_counter()
        counts = ingest_fasta([corpus], shards, window=args.window)
        ingest_s = time.perf_counter() - start
        manifest = read_manifest(shards)
        written = sum((shards / p["file"]).stat().st_size for p in manifest["parts"]) / 1e6
    finally:
        shutil.rmtree(shards.parent, ignore_errors=True)
    print(f"file: {corpus.name}, {megabytes:.1f} MB gzip, {counts['residues'] / 1e6:.1f} M "
          f"residues, {counts['records']} records")
    print(f"zcat > /dev/null:             {zcat_s:7.2f} s  {megabytes / zcat_s:7.1f} MB/s")
    print(f"ingest fasta (window {args.window}):  {ingest_s:7.2f} s  "
          f"{megabytes / ingest_s:7.1f} MB/s  ({counts['windows']:,} windows, "
          f"{written:.1f} MB Parquet)")
    print(f"ratio ingest/zcat speed: {zcat_s / ingest_s:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
