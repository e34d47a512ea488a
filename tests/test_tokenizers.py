"""Tokenizers: exact ids, round trips, errors, reverse complement, batches, RNA structure,
persistence and BLT n-gram ids, checked on hand-written sequences and a real genome."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.tokenizers import (
    CharTokenizer,
    DNATokenizer,
    ProteinTokenizer,
    RNATokenizer,
    tokenizer_from_name,
)
from hyena_glt.errors import ConfigurationError, DataError, TokenizationError

GENOME = (Path(__file__).resolve().parents[2] / "shared" / "data" / "genomes"
          / "klebsiella_pneumoniae" / "Klebs_HS11286.fna.gz")
IUPAC_DNA = "ACGTNRYSWKMBDHV"
ALL_TYPES = [DNATokenizer, RNATokenizer, ProteinTokenizer]


@pytest.fixture(scope="module")
def genome_chunk() -> str:
    """200 kb of the real K. pneumoniae HS11286 chromosome."""
    with pysam.FastaFile(str(GENOME)) as fasta:
        return fasta.fetch(fasta.references[0], 1_000_000, 1_200_000)


def test_special_tokens_and_alphabet_ids() -> None:
    for cls in ALL_TYPES:
        tokenizer = cls()
        ids = [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
               tokenizer.sep_token_id, tokenizer.mask_token_id, tokenizer.bos_token_id,
               tokenizer.eos_token_id]
        assert ids == list(range(7))
        assert tokenizer.id_to_token[:7] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                             "[BOS]", "[EOS]"]
        assert len(tokenizer) <= HyenaGLTConfig().alphabet_size and len(tokenizer) < 256
    assert len(DNATokenizer()) == len(RNATokenizer()) == 22 and len(ProteinTokenizer()) == 33
    assert DNATokenizer().encode(IUPAC_DNA) == list(range(7, 22))
    assert DNATokenizer().encode("GATTACA") == [9, 7, 10, 10, 7, 8, 7]
    assert RNATokenizer().encode("GAUUACA") == [9, 7, 10, 10, 7, 8, 7]  # U in T's slot
    assert ProteinTokenizer().encode("ACDEFGHIKLMNPQRSTVWYXBZUO*") == list(range(7, 33))
    assert ProteinTokenizer().encode("MKT") == [17, 15, 23]
    tokenizer = DNATokenizer()
    assert tokenizer.token_to_id("A") == tokenizer.token_to_id("a") == 7
    assert tokenizer.vocab["T"] == 10 and tokenizer.token_to_id("[MASK]") == 4
    with pytest.raises(TokenizationError, match="'U' is not a dna token"):
        tokenizer.token_to_id("U")


def test_encode_decode_round_trip_and_case() -> None:
    cases = {DNATokenizer: "ACGTNRYSWKMBDHVTTGA", RNATokenizer: "ACGUNRYSWKMBDHVUUGA",
             ProteinTokenizer: "MKTLLILAVVAAALA*XBZUO"}
    for cls, text in cases.items():
        tokenizer = cls()
        assert tokenizer.decode(tokenizer.encode(text)) == text
        assert tokenizer.encode(text.lower()) == tokenizer.encode(text)
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=True)) == text
        assert tokenizer.decode(torch.tensor(tokenizer.encode(text))) == text
    dna = DNATokenizer()
    with_specials = dna.encode("AC", add_special_tokens=True)
    assert with_specials == [2, 7, 8, 3]
    assert dna.decode(with_specials, skip_special_tokens=False) == "[CLS]AC[SEP]"
    with pytest.raises(TokenizationError, match="id 22 at position 1"):
        dna.decode([7, 22])


def test_soft_mask_is_preserved(genome_chunk: str) -> None:
    dna = DNATokenizer()
    text = genome_chunk[:500] + genome_chunk[500:900].lower() + genome_chunk[900:1000]
    ids, mask = dna.encode_array(text, soft_mask=True)
    assert np.array_equal(ids, dna.encode_array(text.upper()))
    assert mask.dtype == np.bool_ and np.flatnonzero(mask).tolist() == list(range(500, 900))
    assert np.array_equal(dna.soft_mask(text), mask)
    assert dna.decode(ids, soft_mask=mask) == text
    assert ProteinTokenizer().decode(ProteinTokenizer().encode("mK*"), soft_mask=[1, 0, 0]) == "mK*"


def test_encode_array_matches_encode_on_real_genome(genome_chunk: str) -> None:
    dna = DNATokenizer()
    ids = dna.encode_array(genome_chunk)
    assert ids.dtype == np.uint8 and ids.shape == (len(genome_chunk),)
    assert ids.flags.writeable
    assert ids.tolist() == dna.encode(genome_chunk)
    assert set(np.unique(ids).tolist()) <= set(range(7, 22))
    lookup = {base: dna.token_to_id(base) for base in set(genome_chunk)}
    assert ids[:1000].tolist() == [lookup[base] for base in genome_chunk[:1000]]
    raw = genome_chunk.encode("ascii")
    assert np.array_equal(dna.encode_array(raw), ids)
    assert np.array_equal(dna.encode_array(np.frombuffer(raw, dtype=np.uint8)), ids)
    assert np.array_equal(dna.encode_array(np.frombuffer(raw[:50], dtype="S1")), ids[:50])
    with pytest.raises(TokenizationError, match="dtype int64"):
        dna.encode_array(np.arange(4))


def test_invalid_character_names_position_character_and_context(genome_chunk: str) -> None:
    dna = DNATokenizer()
    text = genome_chunk[:12345] + "X" + genome_chunk[12345:12400]
    with pytest.raises(TokenizationError) as caught:
        dna.encode_array(text)
    message = str(caught.value)
    assert "'X' at position 12345" in message
    assert repr(genome_chunk[12335:12345] + "[X]" + genome_chunk[12345:12355]) in message
    assert caught.value.position == 12345 and caught.value.character == "X"
    with pytest.raises(TokenizationError, match="'é' at position 2"):
        dna.encode("ACéGT")  # non-ASCII keeps character positions
    with pytest.raises(TokenizationError, match=r"'\\n' at position 3"):
        dna.encode_array(b"ACG\nT")
    with pytest.raises(TokenizationError, match="'T' at position 1 .*RNA uses U"):
        RNATokenizer().encode("AT")
    with pytest.raises(TokenizationError, match="'J' at position 0"):
        ProteinTokenizer().encode("JMK")
    with pytest.raises(TokenizationError, match="sequence 1: .*'-' at position 2"):
        dna.batch_encode(["ACGT", "AC-GT"])
    assert isinstance(caught.value, ValueError)


def test_replace_mode_maps_invalid_characters() -> None:
    assert DNATokenizer(unknown="replace").encode("AXc-é") == [7, 11, 8, 11, 11]
    assert RNATokenizer(unknown="replace").encode("AUT") == [7, 10, 11]
    assert ProteinTokenizer(unknown="replace").encode("MJk") == [17, 27, 15]
    assert DNATokenizer(unknown="replace").reverse_complement("AcX") == "NgT"


def test_reverse_complement_iupac_and_case(genome_chunk: str) -> None:
    dna, rna = DNATokenizer(), RNATokenizer()
    pairs = {"A": "T", "C": "G", "R": "Y", "K": "M", "B": "V", "D": "H", "S": "S", "W": "W",
             "N": "N"}
    for base, partner in pairs.items():
        assert dna.reverse_complement(base) == partner
        assert dna.reverse_complement(partner) == base
        assert dna.reverse_complement(base.lower()) == partner.lower()
    assert dna.reverse_complement("AACgtRyN") == "NrYacGTT"
    assert rna.reverse_complement("AUGCcu") == "agGCAU"
    for text in (IUPAC_DNA + IUPAC_DNA.lower(), genome_chunk):
        assert dna.reverse_complement(dna.reverse_complement(text)) == text
    both_ways = pairs | {partner: base for base, partner in pairs.items()}
    chunk = genome_chunk[:1000]
    assert dna.reverse_complement(chunk) == "".join(both_ways[b] for b in reversed(chunk))
    with pytest.raises(TokenizationError, match="'U' at position 1"):
        dna.reverse_complement("AU")


def test_reverse_complement_ids(genome_chunk: str) -> None:
    dna = DNATokenizer()
    text = genome_chunk[:300] + "RYKMBDHVSWN"
    ids = dna.encode_array(text)
    rc = dna.reverse_complement_ids(ids)
    assert rc.dtype == np.uint8 and rc.tolist() == dna.encode(dna.reverse_complement(text))
    assert np.array_equal(dna.reverse_complement_ids(rc), ids)
    batch = dna.batch_encode(["ACGTR", "AAC"])
    flipped = dna.reverse_complement_ids(batch["input_ids"])
    assert isinstance(flipped, torch.Tensor) and flipped.dtype == torch.long
    assert flipped.tolist() == [dna.encode("YACGT"), dna.encode("GTT") + [0, 0]]
    with_mask = dna.reverse_complement_ids(batch["input_ids"].numpy(), batch["attention_mask"])
    assert with_mask.tolist() == flipped.tolist()
    rna = RNATokenizer()
    assert rna.reverse_complement_ids(np.array(rna.encode("AUGC"))).tolist() == rna.encode("GCAU")
    with pytest.raises(TokenizationError, match="right-padded"):
        dna.reverse_complement_ids(np.array([0, 7, 8]))
    with pytest.raises(TokenizationError, match=r"\[0, 22\)"):
        dna.reverse_complement_ids(np.array([7, 40]))


def test_batch_padding_truncation_and_attention_mask() -> None:
    dna = DNATokenizer()
    batch = dna.batch_encode(["ACGT", "GA", "T"])
    assert batch["input_ids"].tolist() == [[7, 8, 9, 10], [9, 7, 0, 0], [10, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]
    assert batch["input_ids"].dtype == torch.long
    assert torch.equal(dna(["ACGT", "GA", "T"])["input_ids"], batch["input_ids"])
    fixed = dna.batch_encode(["ACGTACGT", "GA"], max_length=5, padding="max_length",
                             add_special_tokens=True, return_tensors="np")
    assert isinstance(fixed["input_ids"], np.ndarray)
    assert fixed["input_ids"].tolist() == [[2, 7, 8, 9, 3], [2, 9, 7, 3, 0]]
    assert fixed["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    longest = dna.batch_encode(["ACGTACGT", "GA"], max_length=6, return_tensors=None)
    assert longest["input_ids"] == [[7, 8, 9, 10, 7, 8], [9, 7, 0, 0, 0, 0]]
    ragged = dna.batch_encode(["ACG", "G"], padding=False, return_tensors=None)
    assert ragged == {"input_ids": [[7, 8, 9], [9]], "attention_mask": [[1, 1, 1], [1]]}
    assert dna.batch_encode("ACG")["input_ids"].shape == (1, 3)
    with pytest.raises(TokenizationError, match="sequence 0 has 8 tokens, more than max_length=4"):
        dna.batch_encode(["ACGTACGT", "GA"], max_length=4, truncation=False)
    with pytest.raises(TokenizationError, match="padding=False"):
        dna.batch_encode(["ACG", "G"], padding=False)
    with pytest.raises(ConfigurationError, match="needs max_length"):
        dna.batch_encode(["ACG"], padding="max_length")
    with pytest.raises(ConfigurationError, match="max_length must be an integer > 2"):
        dna.batch_encode(["ACG"], max_length=2, add_special_tokens=True)


def test_rna_structure_encoding_and_validation() -> None:
    rna = RNATokenizer()
    vocab = rna.structure_vocab
    assert rna.encode_structure("((..))") == [vocab[s] for s in "((..))"] == [2, 2, 1, 1, 3, 3]
    assert rna.encode_structure("((.[[.)).]]<{.}>") == [vocab[s] for s in "((.[[.)).]]<{.}>"]
    for bad, expected in [("((.)", r"unmatched '\(' at position 0"),
                          ("(.))", r"unmatched '\)' at position 3"),
                          ("(.[.)", r"unmatched '\[' at position 2"),
                          ("..x", "invalid structure symbol 'x' at position 2")]:
        with pytest.raises(TokenizationError, match=expected):
            rna.encode_structure(bad)
    with pytest.raises(TokenizationError, match="3 symbols but the sequence has 4"):
        rna.encode_structure("(.)", sequence="ACGU")
    batch = rna.batch_encode(["GGAUCC", "ACU"], structures=["((..))", "..."], max_length=6,
                             add_special_tokens=True)
    assert batch["input_ids"].tolist() == [[2, 9, 9, 7, 10, 8, 3][:5] + [3], [2, 7, 8, 10, 3, 0]]
    assert batch["structure_ids"].tolist() == [[0, 2, 2, 1, 1, 0], [0, 1, 1, 1, 0, 0]]
    assert batch["structure_ids"].shape == batch["input_ids"].shape
    with pytest.raises(TokenizationError, match="sequence 1: structure has 2 symbols"):
        rna.batch_encode(["GGAUCC", "ACU"], structures=["((..))", ".."])
    with pytest.raises(TokenizationError, match="1 structures for 2 sequences"):
        rna.batch_encode(["GG", "AC"], structures=[".."])


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_save_load_round_trip(cls: type[CharTokenizer], tmp_path: Path) -> None:
    tokenizer = cls(vocab_size=512, ngram_sizes=(2, 5), unknown="replace")
    path = tokenizer.save(tmp_path / "tokenizer.json")
    stored = json.loads(path.read_text())
    assert stored["type"] == tokenizer.type_name and stored["vocab_size"] == 512
    assert stored["ngram_sizes"] == [2, 5] and stored["vocabulary"] == tokenizer.id_to_token
    for loaded in (CharTokenizer.load(path), cls.load(path), cls.from_dict(tokenizer.to_dict())):
        assert type(loaded) is cls and loaded.to_dict() == tokenizer.to_dict()
        assert loaded.encode("ACGU?") == tokenizer.encode("ACGU?")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    path = RNATokenizer().save(tmp_path / "rna.json")
    with pytest.raises(DataError, match="rna.json: .*'rna', not a DNATokenizer"):
        DNATokenizer.load(path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "dna",\n')
    with pytest.raises(DataError, match="broken.json: line 2: not valid JSON"):
        CharTokenizer.load(broken)
    stale = DNATokenizer().to_dict() | {"vocabulary": ["[PAD]", "A", "C"]}
    with pytest.raises(ConfigurationError, match="ids would not match"):
        CharTokenizer.from_dict(stale)
    with pytest.raises(ConfigurationError, match="lacks vocab_size"):
        CharTokenizer.from_dict({"type": "dna", "ngram_sizes": [3], "unknown": "error",
                                 "vocabulary": []})
    with pytest.raises(DataError, match="missing.json: cannot read"):
        CharTokenizer.load(tmp_path / "missing.json")


def test_ngram_ids_shape_range_and_causality() -> None:
    tokenizer = DNATokenizer(vocab_size=97, ngram_sizes=(2, 3, 6))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(7, 22, (3, 40), generator=generator)
    ngrams = tokenizer.ngram_ids(ids)
    assert ngrams.shape == (3, 3, 40) and ngrams.dtype == torch.long
    assert int(ngrams.min()) >= 0 and int(ngrams.max()) < 97
    for t in range(39):
        changed = ids.clone()
        changed[:, t + 1] = 7 + (changed[:, t + 1] - 7 + 1) % 15
        after = tokenizer.ngram_ids(changed)
        assert torch.equal(after[..., : t + 1], ngrams[..., : t + 1])
        assert (after[..., t + 1] != ngrams[..., t + 1]).any()
    assert DNATokenizer(vocab_size=0).ngram_ids(ids).shape == (3, 0, 40)


def test_constructor_validation_and_names() -> None:
    for kwargs, field in [({"vocab_size": -1}, "vocab_size"), ({"vocab_size": 2.5}, "vocab_size"),
                          ({"ngram_sizes": (1, 3)}, "ngram_sizes"), ({"unknown": "skip"}, "unknown")]:
        with pytest.raises(ConfigurationError, match=field):
            DNATokenizer(**kwargs)
    with pytest.raises(ConfigurationError, match="abstract"):
        CharTokenizer()
    assert type(tokenizer_from_name("RNA", vocab_size=64)) is RNATokenizer
    assert tokenizer_from_name("protein").vocab_size == 8192
    with pytest.raises(ConfigurationError, match="dna, protein, rna"):
        tokenizer_from_name("codon")
    assert repr(DNATokenizer()) == ("DNATokenizer(vocab_size=8192, ngram_sizes=(3, 4, 5, 6), "
                                    "unknown='error')")


def test_api_example_builds_a_tensor() -> None:
    tokenizer = DNATokenizer(vocab_size=8192)
    input_ids = torch.tensor([tokenizer.encode(s) for s in ["ATCGATCGATCG", "GCTAGCTAGCTA"]])
    assert input_ids.shape == (2, 12)
    assert tokenizer.decode(tokenizer.encode("ATCGATCGATCG")) == "ATCGATCGATCG"
    assert len(RNATokenizer(vocab_size=8192).encode("AUCGAUCGAUCG")) == 12
    assert len(ProteinTokenizer(vocab_size=8192).encode("MKTLLLTLLCLVAAYLA")) == 17
