"""Datasets and collation: API examples, real tables and shards, streaming across workers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pysam
import pytest
import torch
from torch.utils.data import DataLoader

from hyena_glt.data.datasets import (
    GenomeAnnotationDataset,
    GenomicDataset,
    ProteinFunctionDataset,
    ShardDataset,
    VariantEffectDataset,
    collate_batch,
)
from hyena_glt.data.shards import ShardWriter, read_table
from hyena_glt.data.tokenizers import DNATokenizer, ProteinTokenizer
from hyena_glt.errors import DataError, TokenizationError
from hyena_glt.ingest.fasta import ingest_fasta
from hyena_glt.ingest.tables import ingest_table

TOKENIZER = DNATokenizer()
SARS = "genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz"


def test_api_example_works_with_the_default_collation():
    dataset = GenomicDataset(sequences=["ATCGATCG", "GCTAGCTA"], labels=[0, 1],
                             tokenizer=TOKENIZER, max_length=1024)
    batch = next(iter(DataLoader(dataset, batch_size=32, shuffle=False)))
    # Padded to the longest sequence, not to max_length: 8 positions, not 1024.
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 8)
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0].tolist() == TOKENIZER.encode("ATCGATCG")
    assert batch["attention_mask"].sum(dim=1).tolist() == [8, 8]
    assert batch["labels"].tolist() == [0, 1]
    fixed = GenomicDataset(sequences=["ATCGATCG", "GCTAG"], tokenizer=TOKENIZER, max_length=1024,
                           padding="max_length")
    batch = next(iter(DataLoader(fixed, batch_size=2)))
    assert batch["input_ids"].shape == (2, 1024)
    assert batch["input_ids"][1, 5:].eq(TOKENIZER.pad_token_id).all()
    assert batch["attention_mask"].sum(dim=1).tolist() == [8, 5]
    # collate_batch (the trainer's) cuts what items carry down to the batch's longest.
    assert collate_batch([fixed[1], fixed[1]])["input_ids"].shape == (2, 5)
    uneven = GenomicDataset(sequences=["ACGTACGTAC", "GGG"], tokenizer=TOKENIZER, max_length=6)
    assert [len(uneven[i]["input_ids"]) for i in range(2)] == [6, 6]  # longest, cut at 6


def test_unpadded_items_truncate_and_collate_to_the_longest():
    dataset = GenomicDataset(sequences=["ACGTACGTAC", "GGG", "acgt"], labels=["b", "a", "b"],
                             max_length=6, padding=None)
    assert dataset.label2id == {"a": 0, "b": 1} and dataset.id2label == {0: "a", 1: "b"}
    assert [len(dataset[i]["input_ids"]) for i in range(3)] == [6, 3, 4]
    batch = collate_batch([dataset[i] for i in range(3)], pad_token_id=0)
    assert batch["input_ids"].tolist()[1] == TOKENIZER.encode("GGG") + [0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1] * 3 + [0] * 3, [1] * 4 + [0] * 2]
    assert batch["labels"].tolist() == [1, 0, 1]
    with pytest.raises(TokenizationError, match="sequence 1"):
        GenomicDataset(sequences=["ACGT", "ACXT"])


def test_csv_and_shard_directory_give_the_same_items(shared_data, tmp_path):
    path = shared_data / "genomic_benchmarks/human_nontata_promoters/test.csv.gz"
    ingest_table(path, tmp_path / "t")
    from_csv = GenomicDataset(data_path=path, tokenizer=TOKENIZER, max_length=256)
    from_shards = GenomicDataset(data_path=tmp_path / "t", max_length=256)
    assert len(from_csv) == len(from_shards) == 9034 and from_shards.num_classes == 2
    for index in (0, 4000, 9033):
        for key in ("input_ids", "attention_mask", "labels"):
            assert torch.equal(from_csv[index][key], from_shards[index][key])
    assert int(from_csv[0]["attention_mask"].sum()) == 251


def test_protein_function_dataset_maps_class_names(shared_data):
    path = shared_data / "protein/multiloc_localization/multiloc.csv.gz"
    dataset = ProteinFunctionDataset(data_path=path, tokenizer=ProteinTokenizer(), max_length=512)
    frame = pd.read_csv(path)
    assert len(dataset) == 5959 and len(dataset.label2id) == 11
    assert dataset.id2label[int(dataset[3]["labels"])] == frame["label"][3]
    assert dataset[3]["input_ids"].shape == (512,)
    real = int(dataset[3]["attention_mask"].sum())
    assert real == min(512, len(frame["sequence"][3]))
    assert ProteinTokenizer().decode(dataset[3]["input_ids"][:real].tolist()) == \
        frame["sequence"][3][:real].upper()


def test_genome_annotation_dataset_from_csv_and_shards(tmp_path):
    csv = tmp_path / "ann.csv"
    csv.write_text("sequence,labels\nACGTAC,001110\nGGA,\"1,0,1\"\n")
    dataset = GenomeAnnotationDataset(data_path=csv, tokenizer=TOKENIZER, max_length=8,
                                      padding="max_length")
    assert dataset[0]["labels"].tolist() == [0, 0, 1, 1, 1, 0, -100, -100]
    assert dataset[1]["labels"].tolist() == [1, 0, 1] + [-100] * 5
    longest = GenomeAnnotationDataset(data_path=csv, tokenizer=TOKENIZER, max_length=8)
    assert longest[1]["labels"].tolist() == [1, 0, 1, -100, -100, -100]
    assert collate_batch([longest[1]])["labels"].tolist() == [[1, 0, 1]]
    with ShardWriter(tmp_path / "s", "annotation", TOKENIZER) as writer:
        writer.write({"id": "w", "input_ids": TOKENIZER.encode_array("ACGTAC"),
                      "labels": np.array([0, 0, 1, 1, 1, 0], np.int8), "record_id": "r",
                      "start": 0, "end": 6, "strand": "+"})
    shard_item = GenomeAnnotationDataset(data_path=tmp_path / "s", max_length=8,
                                         padding="max_length")[0]
    for key in ("input_ids", "labels", "attention_mask"):
        assert torch.equal(shard_item[key], dataset[0][key])
    batch = collate_batch([GenomeAnnotationDataset(csv, max_length=None, padding=None)[i]
                           for i in range(2)])
    assert batch["labels"].tolist() == [[0, 0, 1, 1, 1, 0], [1, 0, 1, -100, -100, -100]]


def test_variant_effect_dataset_centres_the_variant(shared_data, tmp_path):
    variants = pd.read_csv(shared_data / "variants/brca1_sge_findlay2018/brca1_sge_variants.csv.gz"
                           ).head(6)
    with pysam.FastxFile(str(shared_data / "variants/brca1_grch37/ref_brca1.fa.gz")) as handle:
        reference = next(iter(handle)).sequence.upper()
    rows = []
    for row in variants.itertuples():
        at = row.pos_in_ref_brca1 - 1
        ref = reference[at - 100:at + 100]
        assert ref[100] == row.ref
        rows.append({"ref_sequence": ref, "alt_sequence": ref[:100] + row.alt + ref[101:],
                     "label": row.label_lof})
    pd.DataFrame(rows).to_csv(tmp_path / "v.csv", index=False)
    dataset = VariantEffectDataset(data_path=tmp_path / "v.csv", tokenizer=TOKENIZER,
                                   max_length=64)
    assert len(dataset) == 6
    for index, row in enumerate(variants.itertuples()):
        item = dataset[index]
        offset = int(item["variant_offset"])
        assert offset == 32 and item["ref_input_ids"].shape == (64,)
        assert TOKENIZER.decode(item["ref_input_ids"][offset:offset + 1].tolist()) == row.ref
        assert TOKENIZER.decode(item["alt_input_ids"][offset:offset + 1].tolist()) == row.alt
        assert item["labels"].dtype == torch.long and int(item["labels"]) == row.label_lof
    # Padded past the 200-nt windows: the masks mark the real bases, so padding is not read.
    padded = VariantEffectDataset(data_path=tmp_path / "v.csv", tokenizer=TOKENIZER,
                                  max_length=256, padding="max_length")[0]
    assert padded["alt_input_ids"].shape == padded["alt_attention_mask"].shape == (256,)
    assert int(padded["ref_attention_mask"].sum()) == int(padded["alt_attention_mask"].sum()) == 200
    assert (padded["alt_input_ids"][200:] == TOKENIZER.pad_token_id).all()
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert batch["ref_input_ids"].shape == (3, 64) and batch["labels"].shape == (3,)


def test_a_variants_shard_directory_is_not_read_as_a_sequence_table(shared_data, tmp_path):
    from hyena_glt.ingest.vcf import ingest_variants, variants_from_table

    variants = variants_from_table(
        shared_data / "variants/brca1_sge_findlay2018/brca1_sge_variants.csv.gz",
        chrom="ref_brca1", pos_column="pos_in_ref_brca1", label_column="label_lof")
    ingest_variants(list(variants)[:5], shared_data / "variants/brca1_grch37/ref_brca1.fa.gz",
                    tmp_path / "variants", window=16)
    with pytest.raises(DataError, match="'variants' shard directory.*VariantEffectDataset"):
        GenomicDataset(data_path=tmp_path / "variants")


@pytest.fixture(scope="module")
def sars_windows(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sars") / "w"
    ingest_fasta([shared_data / SARS], out, window=500, stride=500)
    table = read_table(out)
    # re-write with small row groups so workers get several each
    small = out.parent / "small"
    with ShardWriter(small, "windows", TOKENIZER, row_group_rows=7) as writer:
        writer.write_batch(table)
    return small, table.column("input_ids").to_pylist()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_shard_dataset_streams_every_row_exactly_once(sars_windows, num_workers):
    out, rows = sars_windows
    dataset = ShardDataset(out, shuffle_buffer=16, seed=3)
    loader = DataLoader(dataset, batch_size=5, num_workers=num_workers, collate_fn=collate_batch)
    seen = [tuple(ids[mask.bool()].tolist()) for batch in loader
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)]
    assert Counter(seen) == Counter(tuple(r) for r in rows) and len(seen) == len(rows) == 59


def test_shard_dataset_crops_and_shuffles_reproducibly(sars_windows):
    out, rows = sars_windows
    texts = ["".join(map(chr, r)) for r in rows]
    first = [item["input_ids"].tolist() for item in ShardDataset(out, max_length=100,
                                                                 shuffle_buffer=8, seed=1)]
    again = [item["input_ids"].tolist() for item in ShardDataset(out, max_length=100,
                                                                 shuffle_buffer=8, seed=1)]
    other = ShardDataset(out, max_length=100, shuffle_buffer=8, seed=1)
    other.set_epoch(1)
    assert first == again and first != [item["input_ids"].tolist() for item in other]
    assert all(len(ids) == 100 for ids in first)
    for ids in first:  # every crop is a substring of one of the windows
        assert any("".join(map(chr, ids)) in text for text in texts)
    in_order = [item["input_ids"].tolist() for item in ShardDataset(out)]
    assert in_order == rows


def test_shard_dataset_deals_rows_when_ranks_outnumber_row_groups(sars_windows, monkeypatch):
    """Under DDP with fewer row groups than ranks, every rank still gets rows, none twice."""
    out, rows = sars_windows
    one_group = out.parent / "one_group"
    with ShardWriter(one_group, "windows", TOKENIZER) as writer:
        writer.write_batch(read_table(out))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 3)
    shares = []
    for rank in range(3):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        shares.append([tuple(item["input_ids"].tolist()) for item in ShardDataset(one_group)])
    assert [len(share) for share in shares] == [20, 20, 19]
    assert Counter(sum(shares, [])) == Counter(tuple(r) for r in rows)


def test_shard_dataset_streams_several_directories_as_one(sars_windows, tmp_path):
    out, rows = sars_windows
    both = ShardDataset([out, out])
    assert both.num_rows == 2 * len(rows)
    assert [item["input_ids"].tolist() for item in both] == rows + rows
    (tmp_path / "labels.csv").write_text("sequence,label\nACGT,1\nGGCA,0\n")
    table = tmp_path / "table"
    ingest_table(tmp_path / "labels.csv", table)
    with pytest.raises(DataError, match="'table' shards"):
        ShardDataset([out, table])


def test_collate_batch_pads_variant_pairs():
    items = [{"ref_input_ids": torch.tensor([7, 8, 9]), "alt_input_ids": torch.tensor([7, 9, 9]),
              "variant_offset": torch.tensor(1), "labels": torch.tensor(0.5), "id": "a"},
             {"ref_input_ids": torch.tensor([7]), "alt_input_ids": torch.tensor([8]),
              "variant_offset": torch.tensor(0), "labels": torch.tensor(1.5), "id": "b"}]
    batch = collate_batch(items, pad_token_id=0)
    assert batch["ref_input_ids"].tolist() == [[7, 8, 9], [7, 0, 0]]
    assert batch["alt_attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [0.5, 1.5] and batch["id"] == ["a", "b"]
