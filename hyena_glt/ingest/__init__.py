"""Ingestion: real input files -> Parquet shard directories (see ``docs/schemas.md``).

Each ingester reads one kind of input with pysam or pandas, validates it (bad input raises
:class:`hyena_glt.errors.DataError` naming file, record and line) and writes one shard
directory with :class:`hyena_glt.data.shards.ShardWriter`, atomically.
"""

from .fasta import ingest_fasta, read_fasta, window_bounds
from .tables import ingest_table

__all__ = ["ingest_fasta", "read_fasta", "window_bounds", "ingest_table"]
