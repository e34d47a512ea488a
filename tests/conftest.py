"""Shared fixtures: the real data sets in ``shared/data`` and tiny FASTA writers."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` next to the repository; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA


def _fasta_text(records: Sequence[tuple[str, str]], width: int) -> str:
    lines = []
    for name, sequence in records:
        lines.append(f">{name}")
        lines.extend(sequence[i:i + width] for i in range(0, len(sequence), width))
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_fasta(tmp_path: Path) -> Callable[..., Path]:
    """``write_fasta(records, name="x.fa", width=60)`` -> path; ``.gz`` names are gzipped.

    ``records`` is a list of ``(name, sequence)``; a raw string is written as is (for
    malformed files).
    """

    def write(records: Sequence[tuple[str, str]] | str, name: str = "x.fa",
              width: int = 60) -> Path:
        text = records if isinstance(records, str) else _fasta_text(records, width)
        path = tmp_path / name
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run far faster on one thread than on two contended ones (CI has 2 cores).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """``tiny_causal_lm(sequence_length)`` -> directory of a tiny pretrained causal LM
    (d_model 16, 2 layers, seed 0) saved with its tokenizer: the starting point of the
    fine-tuning tests. One model per length, built on first use."""
    from hyena_glt import HyenaGLTConfig
    from hyena_glt.data.tokenizers import DNATokenizer
    from hyena_glt.model import HyenaGLTForCausalLM
    from hyena_glt.training import seed_everything

    built: dict[int, Path] = {}

    def build(sequence_length: int) -> Path:
        if sequence_length not in built:
            seed_everything(0)
            config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2,
                                    sequence_length=sequence_length, num_heads=2,
                                    alphabet_size=22, batch_size=16, num_epochs=1,
                                    learning_rate=3e-3, warmup_steps=2, dropout=0.0)
            out = tmp_path_factory.mktemp("pretrained") / "tiny-lm"
            HyenaGLTForCausalLM(config).save_pretrained(out,
                                                        tokenizer=DNATokenizer(vocab_size=64))
            built[sequence_length] = out
        return built[sequence_length]

    return build
