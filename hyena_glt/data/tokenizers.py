"""Character-level tokenizers for DNA, RNA and protein sequences.

Every tokenizer shares one id layout, so models and Parquet shards (ids stored as ``uint8``) can
be read without knowing which tokenizer wrote them::

    0 [PAD]  1 [UNK]  2 [CLS]  3 [SEP]  4 [MASK]  5 [BOS]  6 [EOS]  then the alphabet from id 7
    DNA      A C G T N R Y S W K M B D H V                      (len 22)
    RNA      A C G U N R Y S W K M B D H V  (U in T's slot)     (len 22)
    Protein  A C D E F G H I K L M N P Q R S T V W Y X B Z U O *  (len 33)

``vocab_size`` is not the number of character ids (that is ``len(tokenizer)``): it is the number of
hash buckets of the BLT-style n-gram embeddings (see :mod:`hyena_glt.data.ngrams`), and
:meth:`CharTokenizer.ngram_ids` computes those bucket ids from character ids.

The core, :meth:`CharTokenizer.encode_array`, maps bytes through a 256-entry table with
``bytes.translate`` (no per-character Python loop), so whole chromosomes tokenize at hundreds
of MB/s; invalid bytes map to a sentinel found with one ``memchr``-speed ``find``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import ConfigurationError, DataError, TokenizationError
from ..io import atomic_file
from .ngrams import hash_ngrams

__all__ = [
    "SPECIAL_TOKENS",
    "CharTokenizer",
    "NucleicAcidTokenizer",
    "DNATokenizer",
    "RNATokenizer",
    "ProteinTokenizer",
    "tokenizer_from_name",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]")
_INVALID = 255  # sentinel of the byte tables; every real id is < len(SPECIAL_TOKENS) + 26
_CONTEXT = 10  # characters shown either side of an invalid character
_REGISTRY: dict[str, type[CharTokenizer]] = {}
_PADDING_MODES = {True: "longest", "longest": "longest", "max_length": "max_length",
                  False: None, "do_not_pad": None}

SequenceLike = str | bytes | bytearray | memoryview | np.ndarray


def _as_bytes(sequence: SequenceLike) -> bytearray:
    """A writable byte copy; non-ASCII characters become '?' (one byte each, never valid)."""
    if isinstance(sequence, str):
        return bytearray(sequence, "ascii", "replace")
    if isinstance(sequence, np.ndarray):
        if sequence.dtype != np.uint8 and sequence.dtype != np.dtype("S1"):
            raise TokenizationError(
                f"encode_array takes uint8 byte arrays, got an array of dtype {sequence.dtype}")
        return bytearray(np.ascontiguousarray(sequence).reshape(-1).view(np.uint8).data)
    if isinstance(sequence, bytes | bytearray | memoryview):
        return bytearray(sequence)
    raise TokenizationError(f"cannot tokenize a {type(sequence).__name__}; pass str or bytes")


def _as_batch(sequences: Any, what: str) -> list:
    """A list of items; a single string (or bytes) is a batch of one."""
    if isinstance(sequences, str | bytes):
        return [sequences]
    if not isinstance(sequences, Iterable):
        raise TokenizationError(f"{what} must be a list of strings, got {type(sequences).__name__}")
    return list(sequences)


class CharTokenizer:
    """One id per character, shared special tokens, hash n-gram ids for BLT embeddings.

    Args:
        vocab_size: buckets of the hash n-gram embedding table (``HyenaGLTConfig.vocab_size``);
            0 turns the n-gram ids off.
        ngram_sizes: n-gram lengths (each >= 2) hashed into those buckets.
        unknown: ``"error"`` raises :class:`TokenizationError` on a character outside the
            alphabet, naming its position; ``"replace"`` reads it as ``N`` (nucleic) / ``X``.

    Outputs: :meth:`encode` a ``list[int]`` of length L; :meth:`encode_array` ``(L,)`` uint8;
    :meth:`batch_encode` / ``__call__`` ``input_ids (B, L)`` and ``attention_mask (B, L)``
    int64 (1 = real token); :meth:`ngram_ids` ``(B, L) -> (B, len(ngram_sizes), L)`` int64.

    Raises:
        ConfigurationError: an impossible argument.
    """

    type_name: ClassVar[str] = ""
    alphabet: ClassVar[tuple[str, ...]] = ()
    replacement: ClassVar[str] = ""
    pad_token_id: ClassVar[int] = 0
    unk_token_id: ClassVar[int] = 1
    cls_token_id: ClassVar[int] = 2
    sep_token_id: ClassVar[int] = 3
    mask_token_id: ClassVar[int] = 4
    bos_token_id: ClassVar[int] = 5
    eos_token_id: ClassVar[int] = 6
    num_special_tokens: ClassVar[int] = len(SPECIAL_TOKENS)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("type_name"):
            _REGISTRY[cls.type_name] = cls

    def __init__(self, vocab_size: int = 8192, ngram_sizes: Sequence[int] = (3, 4, 5, 6),
                 unknown: str = "error") -> None:
        if not self.alphabet:
            raise ConfigurationError("CharTokenizer is abstract: use DNATokenizer, RNATokenizer "
                                     "or ProteinTokenizer (or tokenizer_from_name)")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 0:
            raise ConfigurationError(f"vocab_size must be an integer >= 0 (hash n-gram buckets; "
                                     f"0 turns them off), got {vocab_size!r}")
        sizes = tuple(ngram_sizes)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in sizes):
            raise ConfigurationError(f"ngram_sizes must be integers >= 2, got {ngram_sizes!r}")
        if unknown not in ("error", "replace"):
            raise ConfigurationError(f"unknown must be 'error' or 'replace', got {unknown!r}")
        self.vocab_size = vocab_size
        self.ngram_sizes = sizes
        self.unknown = unknown
        self._id_to_token = list(SPECIAL_TOKENS) + list(self.alphabet)
        self._vocab = {token: i for i, token in enumerate(self._id_to_token)}
        self._strict_table = self._byte_table(replace=False)
        self._encode_table = self._byte_table(replace=True) if unknown == "replace" else (
            self._strict_table)
        self._decode_table = bytes(
            ord(self._id_to_token[i]) if self.num_special_tokens <= i < len(self) else 0
            for i in range(256))

    def _byte_table(self, replace: bool) -> bytes:
        """256-entry byte -> id table; letters of either case map to the same id."""
        fill = self._vocab[self.replacement] if replace else _INVALID
        table = bytearray([fill]) * 256
        for token in self.alphabet:
            table[ord(token.upper())] = table[ord(token.lower())] = self._vocab[token]
        return bytes(table)

    # --- vocabulary -------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of character token ids (special tokens + alphabet)."""
        return len(self._id_to_token)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, "
                f"ngram_sizes={self.ngram_sizes}, unknown={self.unknown!r})")

    @property
    def vocab(self) -> dict[str, int]:
        """Token -> id (a copy)."""
        return dict(self._vocab)

    @property
    def id_to_token(self) -> list[str]:
        """Id -> token (a copy)."""
        return list(self._id_to_token)

    def token_to_id(self, token: str) -> int:
        """Id of a special token or an alphabet letter (either case)."""
        key = token if token in self._vocab else token.upper()
        if key not in self._vocab:
            raise TokenizationError(f"{token!r} is not a {self.type_name} token; the vocabulary "
                                    f"is {' '.join(self._id_to_token)}")
        return self._vocab[key]

    # --- encoding ---------------------------------------------------------------------------
    def encode_many(self, sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize many sequences in one vectorised call.

        Returns ``(flat uint8 ids, int64 offsets)``: row ``i`` is ``ids[offsets[i]:offsets[i+1]]``.
        An invalid character raises :class:`TokenizationError` with ``row``, ``position``
        (within that row) and ``character`` attributes, so callers can name the record.
        """
        strings = [str(s) for s in sequences]
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        offsets = np.zeros(len(strings) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        try:
            values = self.encode_array("".join(strings))
        except TokenizationError as err:
            flat = getattr(err, "position", 0)
            row = int(np.searchsorted(offsets, flat, side="right") - 1)
            position = int(flat - offsets[row])
            error = TokenizationError(f"sequence {row}: character {strings[row][position]!r} at "
                                      f"position {position} is outside the "
                                      f"{self.type_name.upper()} alphabet")
            error.row, error.position, error.character = row, position, strings[row][position]
            raise error from None
        return values, offsets

    def encode_array(self, sequence: SequenceLike, soft_mask: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Vectorised encoding of a whole sequence (e.g. a chromosome) to ``uint8`` ids.

        Args:
            sequence: text, bytes, or a ``uint8`` array of ASCII codes; case is ignored.
            soft_mask: also return the lowercase (soft-masked) positions.

        Returns:
            ``(length,)`` ``uint8`` ids, or ``(ids, mask)`` with ``mask`` from :meth:`soft_mask`.

        Raises:
            TokenizationError: a character outside the alphabet (with ``unknown="error"``),
                naming its position, the character and its context.
        """
        raw = _as_bytes(sequence)
        ids = raw.translate(self._encode_table)
        first_invalid = ids.find(_INVALID)
        if first_invalid >= 0:
            raise self._invalid_character(sequence, raw, first_invalid)
        array = np.frombuffer(ids, dtype=np.uint8)
        if soft_mask:
            return array, self.soft_mask(raw)
        return array

    def soft_mask(self, sequence: SequenceLike) -> np.ndarray:
        """``(length,)`` bool, True where the character is lowercase (soft-masked, e.g. repeats)."""
        raw = sequence if isinstance(sequence, bytearray) else _as_bytes(sequence)
        return np.frombuffer(raw.translate(_LOWERCASE_TABLE), dtype=np.bool_)

    def _invalid_character(self, sequence: SequenceLike, raw: bytearray, position: int
                           ) -> TokenizationError:
        if isinstance(sequence, str):
            char = sequence[position]
            before = sequence[max(0, position - _CONTEXT):position]
            after = sequence[position + 1:position + 1 + _CONTEXT]
        else:
            char = chr(raw[position])
            text = raw.decode("ascii", "replace")
            before = text[max(0, position - _CONTEXT):position]
            after = text[position + 1:position + 1 + _CONTEXT]
        error = TokenizationError(
            f"invalid {self.type_name.upper()} character {char!r} at position {position} "
            f"(context {before + '[' + char + ']' + after!r}){self._hint(char)}; the alphabet is "
            f"{''.join(self.alphabet)} (either case); use unknown='replace' to read it as "
            f"{self.replacement}")
        error.position, error.character = position, char
        return error

    def _hint(self, char: str) -> str:
        return ""

    def encode(self, sequence: str, add_special_tokens: bool = False) -> list[int]:
        """Ids of one sequence; ``add_special_tokens`` wraps them as ``[CLS] ... [SEP]``."""
        ids = self.encode_array(sequence).tolist()
        if add_special_tokens:
            return [self.cls_token_id, *ids, self.sep_token_id]
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray | torch.Tensor,
               skip_special_tokens: bool = True, soft_mask: np.ndarray | None = None) -> str:
        """Text of one id sequence (uppercase).

        Args:
            ids: ``(length,)`` token ids.
            skip_special_tokens: drop ``[PAD]``, ``[CLS]``, ... instead of writing them out.
            soft_mask: optional bool mask over the decoded characters (as returned by
                :meth:`soft_mask`) whose True positions are written in lowercase.
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        array = np.asarray(ids)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise TokenizationError(f"decode takes one 1-D integer id sequence, got shape "
                                    f"{array.shape} of dtype {array.dtype}")
        bad = np.flatnonzero((array < 0) | (array >= len(self)))
        if bad.size:
            raise TokenizationError(f"id {array[bad[0]]} at position {bad[0]} is outside the "
                                    f"{self.type_name} vocabulary [0, {len(self)})")
        special = array < self.num_special_tokens
        if skip_special_tokens:
            array, special = array[~special], special[~special]
        if soft_mask is not None and (special.any() or len(soft_mask) != len(array)):
            raise TokenizationError(f"soft_mask has {len(soft_mask)} entries for "
                                    f"{int((~special).sum())} characters and {int(special.sum())} "
                                    f"special tokens; it must cover exactly the characters")
        pieces, start = [], 0
        for position in np.flatnonzero(special):  # loops over special tokens only
            pieces.append(self._characters(array[start:position]))
            pieces.append(self._id_to_token[array[position]])
            start = position + 1
        pieces.append(self._characters(array[start:], soft_mask))
        return "".join(pieces)

    def _characters(self, ids: np.ndarray, soft_mask: np.ndarray | None = None) -> str:
        letters = bytearray(ids.astype(np.uint8).tobytes()).translate(self._decode_table)
        if soft_mask is not None:
            codes = np.frombuffer(letters, dtype=np.uint8).copy()
            codes[np.asarray(soft_mask, dtype=bool)] |= 0x20  # ASCII lowercase; '*' unchanged
            letters = codes.tobytes()
        return letters.decode("ascii")

    # --- batches ----------------------------------------------------------------------------
    def batch_encode(self, sequences: Iterable[str] | str, max_length: int | None = None,
                     padding: bool | str = True, truncation: bool = True,
                     add_special_tokens: bool = False, return_tensors: str | None = "pt"
                     ) -> dict[str, Any]:
        """Encode, truncate and right-pad a batch.

        Args:
            sequences: the sequences (a single string is a batch of one).
            max_length: longest row (special tokens included); ``None``: no limit.
            padding: ``True``/``"longest"`` pads to the longest row, ``"max_length"`` to
                ``max_length``, ``False`` leaves rows ragged (only with ``return_tensors=None``).
            truncation: cut rows longer than ``max_length`` (keeping ``[CLS]``/``[SEP]``);
                if False such a row raises :class:`TokenizationError`.
            add_special_tokens: wrap each row as ``[CLS] ... [SEP]``.
            return_tensors: ``"pt"`` (int64 tensors), ``"np"`` (int64 arrays) or ``None`` (lists).

        Returns:
            ``{"input_ids", "attention_mask"}``, each ``(batch, length)``; mask 1 = real token.
        """
        rows = self._encode_rows(_as_batch(sequences, "sequences"))
        columns = {"input_ids": (rows, self.cls_token_id, self.sep_token_id, self.pad_token_id)}
        return self._collate(columns, max_length, padding, truncation, add_special_tokens,
                             return_tensors)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Same as :meth:`batch_encode`."""
        return self.batch_encode(*args, **kwargs)

    def _encode_rows(self, sequences: list) -> list[np.ndarray]:
        rows = []
        for index, sequence in enumerate(sequences):
            try:
                rows.append(self.encode_array(sequence))
            except TokenizationError as err:
                raise TokenizationError(f"sequence {index}: {err}") from None
        return rows

    def _collate(self, columns: dict[str, tuple[list[np.ndarray], int, int, int]],
                 max_length: int | None, padding: bool | str, truncation: bool,
                 add_special_tokens: bool, return_tensors: str | None) -> dict[str, Any]:
        """Frame, truncate and pad aligned columns; each is (rows, start id, end id, pad id)."""
        if padding not in _PADDING_MODES:
            raise ConfigurationError(f"padding must be True, False, 'longest', 'max_length' or "
                                     f"'do_not_pad', got {padding!r}")
        mode = _PADDING_MODES[padding]
        if return_tensors not in ("pt", "np", None):
            raise ConfigurationError(f"return_tensors must be 'pt', 'np' or None, "
                                     f"got {return_tensors!r}")
        extra = 2 if add_special_tokens else 0
        if max_length is not None and (isinstance(max_length, bool)
                                       or not isinstance(max_length, int) or max_length <= extra):
            raise ConfigurationError(f"max_length must be an integer > {extra}, got {max_length!r}")
        if mode == "max_length" and max_length is None:
            raise ConfigurationError("padding='max_length' needs max_length")
        keep = []
        for index, row in enumerate(columns["input_ids"][0]):
            if max_length is not None and len(row) + extra > max_length and not truncation:
                raise TokenizationError(
                    f"sequence {index} has {len(row) + extra} tokens, more than max_length="
                    f"{max_length}; pass truncation=True or a larger max_length")
            keep.append(len(row) if max_length is None else min(len(row), max_length - extra))
        lengths = np.asarray(keep, dtype=np.int64) + extra
        width = max_length if mode == "max_length" else int(lengths.max(initial=0))
        if mode is None and return_tensors is not None and len(set(lengths.tolist())) > 1:
            raise TokenizationError("rows differ in length and padding=False; use padding=True "
                                    "or return_tensors=None")
        batch = {}
        for name, (rows, start, end, pad) in columns.items():
            matrix = np.full((len(rows), width), pad, dtype=np.int64)
            for i, (row, n) in enumerate(zip(rows, keep, strict=True)):
                framed = np.concatenate([[start], row[:n], [end]]) if extra else row[:n]
                matrix[i, :len(framed)] = framed
            batch[name] = matrix
        batch["attention_mask"] = (np.arange(width) < lengths[:, None]).astype(np.int64)
        if return_tensors == "pt":
            return {name: torch.from_numpy(matrix) for name, matrix in batch.items()}
        if return_tensors == "np":
            return batch
        return {name: [row[:n].tolist() for row, n in zip(matrix, lengths, strict=True)]
                if mode is None else matrix.tolist() for name, matrix in batch.items()}

    # --- BLT n-grams ------------------------------------------------------------------------
    def ngram_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Hash n-gram bucket ids: ``(batch, length) -> (batch, len(ngram_sizes), length)``.

        Each id depends only on positions ``<= t`` (causal); empty when ``vocab_size == 0``.
        """
        ids = torch.as_tensor(input_ids)
        if self.vocab_size == 0 or not self.ngram_sizes:
            return torch.zeros((*ids.shape[:-1], 0, ids.shape[-1]), dtype=torch.long,
                               device=ids.device)
        return torch.stack([hash_ngrams(ids, n, self.vocab_size) for n in self.ngram_sizes],
                           dim=-2)

    # --- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings and vocabulary (for shard metadata and model directories)."""
        return {"type": self.type_name, "vocab_size": self.vocab_size,
                "ngram_sizes": list(self.ngram_sizes), "unknown": self.unknown,
                "vocabulary": self.id_to_token}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CharTokenizer:
        """Rebuild a tokenizer from :meth:`to_dict`, dispatching on ``data["type"]``.

        Raises:
            ConfigurationError: a missing key, an unknown or mismatched type, or a stored
                vocabulary that differs from this version's (ids would silently change).
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"a tokenizer is stored as a JSON object, got "
                                     f"{type(data).__name__}")
        missing = [key for key in ("type", "vocab_size", "ngram_sizes", "unknown", "vocabulary")
                   if key not in data]
        if missing:
            raise ConfigurationError(f"stored tokenizer lacks {', '.join(missing)}")
        target = _REGISTRY.get(data["type"])
        if target is None:
            raise ConfigurationError(f"unknown tokenizer type {data['type']!r}; expected one of "
                                     f"{', '.join(sorted(_REGISTRY))}")
        if not issubclass(target, cls):
            raise ConfigurationError(f"stored tokenizer is {data['type']!r}, not a "
                                     f"{cls.__name__}")
        tokenizer = target(vocab_size=data["vocab_size"], ngram_sizes=data["ngram_sizes"],
                           unknown=data["unknown"])
        if list(data["vocabulary"]) != tokenizer.id_to_token:
            raise ConfigurationError(
                f"stored {data['type']} vocabulary {data['vocabulary']} differs from this "
                f"version's {tokenizer.id_to_token}; the ids would not match")
        return tokenizer

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically) and return the path."""
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`; a bad file raises :class:`DataError`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as err:
            raise DataError(f"cannot read tokenizer file: {err.strerror}", path=path) from None
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON: {err.msg}", path=path, line=err.lineno) from None
        except UnicodeDecodeError as err:
            raise DataError(f"not UTF-8 text: {err.reason}", path=path) from None
        try:
            return cls.from_dict(data)
        except ConfigurationError as err:
            raise DataError(str(err), path=path) from None


_LOWERCASE_TABLE = bytes(1 if ord("a") <= i <= ord("z") else 0 for i in range(256))


class NucleicAcidTokenizer(CharTokenizer):
    """DNA/RNA: IUPAC codes and reverse complement (R<->Y, K<->M, B<->V, D<->H; S W N self)."""

    replacement: ClassVar[str] = "N"
    complement: ClassVar[dict[str, str]] = {}

    def __init__(self, vocab_size: int = 8192, ngram_sizes: Sequence[int] = (3, 4, 5, 6),
                 unknown: str = "error") -> None:
        super().__init__(vocab_size, ngram_sizes, unknown)
        table = bytearray(range(256))
        for base, partner in self.complement.items():
            table[ord(base)], table[ord(base.lower())] = ord(partner), ord(partner.lower())
        self._complement_table = bytes(table)
        self._complement_ids = np.arange(len(self), dtype=np.int64)
        for base, partner in self.complement.items():
            self._complement_ids[self._vocab[base]] = self._vocab[partner]

    def reverse_complement(self, sequence: str) -> str:
        """Reverse complement with IUPAC codes, case preserved (``"ACgtR"`` -> ``"YacGT"``).

        Invalid characters raise :class:`TokenizationError` (or become ``N`` with
        ``unknown="replace"``).
        """
        raw = _as_bytes(sequence)
        checked = raw.translate(self._strict_table)
        first_invalid = checked.find(_INVALID)
        if first_invalid >= 0 and self.unknown == "error":
            raise self._invalid_character(sequence, raw, first_invalid)
        if first_invalid >= 0:
            invalid = np.frombuffer(checked, dtype=np.uint8) == _INVALID
            np.frombuffer(raw, dtype=np.uint8)[invalid] = ord("N")
        return raw.translate(self._complement_table)[::-1].decode("ascii")

    def reverse_complement_ids(self, ids: np.ndarray | torch.Tensor,
                               attention_mask: np.ndarray | torch.Tensor | None = None
                               ) -> np.ndarray | torch.Tensor:
        """Reverse complement of token ids along the last axis; same shape, dtype and device.

        In a right-padded batch only the real tokens of each row are reversed and the padding
        stays at the end; real tokens are ``attention_mask == 1``, or ``ids != pad`` when no
        mask is given. Special tokens such as ``[CLS]``/``[SEP]`` would be reversed with the
        rest, so call this on ids encoded without them.
        """
        is_tensor = isinstance(ids, torch.Tensor)
        values = ids.detach().cpu().numpy() if is_tensor else np.asarray(ids)
        if values.dtype.kind not in "iu" or values.ndim == 0:
            raise TokenizationError(f"reverse_complement_ids takes integer ids of shape "
                                    f"(..., length), got {values.dtype} of shape {values.shape}")
        if values.size and (values.min() < 0 or values.max() >= len(self)):
            raise TokenizationError(f"ids must lie in [0, {len(self)}), got values from "
                                    f"{values.min()} to {values.max()}")
        if attention_mask is None:
            real = values != self.pad_token_id
        elif isinstance(attention_mask, torch.Tensor):
            real = attention_mask.detach().cpu().numpy().astype(bool)
        else:
            real = np.asarray(attention_mask).astype(bool)
        if real.shape != values.shape:
            raise TokenizationError(f"attention_mask shape {real.shape} != ids shape "
                                    f"{values.shape}")
        if (real[..., 1:] > real[..., :-1]).any():
            raise TokenizationError("reverse_complement_ids needs right-padded rows (padding "
                                    "found before a real token)")
        lengths = real.sum(axis=-1, keepdims=True)
        positions = np.arange(values.shape[-1])
        source = np.where(positions < lengths, lengths - 1 - positions, positions)
        flipped = np.take_along_axis(self._complement_ids[values], source, axis=-1)
        result = np.where(positions < lengths, flipped, self.pad_token_id).astype(values.dtype)
        return torch.from_numpy(result).to(ids.device) if is_tensor else result


class DNATokenizer(NucleicAcidTokenizer):
    """DNA: A C G T N and the IUPAC ambiguity codes R Y S W K M B D H V (ids 7..21)."""

    type_name: ClassVar[str] = "dna"
    alphabet: ClassVar[tuple[str, ...]] = tuple("ACGTNRYSWKMBDHV")
    complement: ClassVar[dict[str, str]] = dict(zip("ACGTNRYSWKMBDHV", "TGCANYRSWMKVHDB",
                                                    strict=True))


class RNATokenizer(NucleicAcidTokenizer):
    """RNA: DNA's layout with U in T's slot (id 10), plus dot-bracket secondary structure.

    Structure ids: 0 = none (padding, special tokens), then ``. ( ) [ ] { } < >`` as 1..9;
    ``[]{}<>`` are pseudoknot brackets, each kind balanced on its own.
    """

    type_name: ClassVar[str] = "rna"
    alphabet: ClassVar[tuple[str, ...]] = tuple("ACGUNRYSWKMBDHV")
    complement: ClassVar[dict[str, str]] = dict(zip("ACGUNRYSWKMBDHV", "UGCANYRSWMKVHDB",
                                                    strict=True))
    structure_pad_id: ClassVar[int] = 0
    structure_vocab: ClassVar[dict[str, int]] = {s: i + 1 for i, s in enumerate(".()[]{}<>")}

    def _hint(self, char: str) -> str:
        return " (RNA uses U: transcribe T to U or use DNATokenizer)" if char in "Tt" else ""

    def encode_structure(self, dot_bracket: str, sequence: str | None = None) -> list[int]:
        """Structure ids of a dot-bracket string, checked for balance (and length if given).

        Raises:
            TokenizationError: an unknown symbol, an unmatched bracket (with its position), or
                a length that differs from ``sequence``.
        """
        return self._structure_array(dot_bracket, sequence).tolist()

    def _structure_array(self, dot_bracket: str, sequence: SequenceLike | None) -> np.ndarray:
        if sequence is not None and len(dot_bracket) != len(sequence):
            raise TokenizationError(f"structure has {len(dot_bracket)} symbols but the sequence "
                                    f"has {len(sequence)} characters")
        codes = bytearray(dot_bracket, "ascii", "replace").translate(_STRUCTURE_TABLE)
        bad = codes.find(_INVALID)
        if bad >= 0:
            raise TokenizationError(f"invalid structure symbol {dot_bracket[bad]!r} at position "
                                    f"{bad}; allowed: . ( ) [ ] {{ }} < >")
        ids = np.frombuffer(codes, dtype=np.uint8).astype(np.int64)
        for opening, closing in ("()", "[]", "{}", "<>"):
            depth = np.cumsum((ids == self.structure_vocab[opening]).astype(np.int64)
                              - (ids == self.structure_vocab[closing]))
            if depth.size and depth.min() < 0:
                raise TokenizationError(f"unmatched {closing!r} at position "
                                        f"{int(np.argmax(depth < 0))} in the structure")
            if depth.size and depth[-1] > 0:
                never_closed = np.minimum.accumulate(depth[::-1])[::-1] >= depth
                position = np.flatnonzero(never_closed & (ids == self.structure_vocab[opening]))
                raise TokenizationError(f"unmatched {opening!r} at position {int(position[0])} "
                                        f"in the structure (never closed)")
        return ids

    def batch_encode(self, sequences: Iterable[str] | str, max_length: int | None = None,
                     padding: bool | str = True, truncation: bool = True,
                     add_special_tokens: bool = False, return_tensors: str | None = "pt", *,
                     structures: Iterable[str] | str | None = None) -> dict[str, Any]:
        """As :meth:`CharTokenizer.batch_encode`; with ``structures`` (one dot-bracket string
        per sequence) also ``"structure_ids" (B, L)`` int64, aligned with ``input_ids``."""
        if structures is None:
            return super().batch_encode(sequences, max_length, padding, truncation,
                                        add_special_tokens, return_tensors)
        sequences = _as_batch(sequences, "sequences")
        structures = _as_batch(structures, "structures")
        if len(structures) != len(sequences):
            raise TokenizationError(f"{len(structures)} structures for {len(sequences)} sequences")
        folds = []
        for index, (structure, sequence) in enumerate(zip(structures, sequences, strict=True)):
            try:
                folds.append(self._structure_array(structure, sequence))
            except TokenizationError as err:
                raise TokenizationError(f"sequence {index}: {err}") from None
        pad = self.structure_pad_id
        columns = {"input_ids": (self._encode_rows(sequences), self.cls_token_id,
                                 self.sep_token_id, self.pad_token_id),
                   "structure_ids": (folds, pad, pad, pad)}
        return self._collate(columns, max_length, padding, truncation, add_special_tokens,
                             return_tensors)


_STRUCTURE_TABLE = bytes(RNATokenizer.structure_vocab.get(chr(i), _INVALID) for i in range(256))


class ProteinTokenizer(CharTokenizer):
    """Protein: the 20 amino acids, then X (unknown), B (D/N), Z (E/Q), U (Sec), O (Pyl), '*'."""

    type_name: ClassVar[str] = "protein"
    alphabet: ClassVar[tuple[str, ...]] = tuple("ACDEFGHIKLMNPQRSTVWYXBZUO*")
    replacement: ClassVar[str] = "X"


def tokenizer_from_name(name: str, **kwargs: Any) -> CharTokenizer:
    """``"dna"``, ``"rna"`` or ``"protein"`` (any case) -> a tokenizer built with ``kwargs``."""
    cls = _REGISTRY.get(str(name).lower())
    if cls is None:
        raise ConfigurationError(f"unknown tokenizer {name!r}; expected one of "
                                 f"{', '.join(sorted(_REGISTRY))}")
    return cls(**kwargs)
