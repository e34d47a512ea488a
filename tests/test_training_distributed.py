"""DDP on two CPU processes (gloo) equals one process on the same global batch.

Dynamic merging is off here: its boundary threshold is a running quantile of each batch (a
buffer, like BatchNorm statistics), so half-batches on two ranks legitimately calibrate it
differently from one full batch.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.datasets import GenomicDataset
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.training import HyenaGLTTrainer, seed_everything
from hyena_glt.training.distributed import DistributedContext, torchrun_environment

GENOME = Path("genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train(out: Path, sequences: list[str], batch_size: int) -> None:
    """Four optimizer steps over 32 windows; dropout 0 so the ranks' RNGs do not matter."""
    torch.set_num_threads(1)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=128,
                            num_heads=2, alphabet_size=22, batch_size=batch_size, num_epochs=1,
                            learning_rate=3e-3, warmup_steps=2, dropout=0.0, seed=0,
                            use_dynamic_merging=False)
    seed_everything(0)
    model = HyenaGLTForCausalLM(config)
    data = GenomicDataset(sequences=sequences, max_length=None, padding=None)
    HyenaGLTTrainer(model, config, data, output_dir=out, max_steps=4, log_steps=1,
                    show_progress=False).train()


def worker(rank: int, port: int, out: Path, sequences: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        train(out, sequences, batch_size=4)  # 2 ranks x 4 = the single process's 8
    finally:
        torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def sequences(shared_data) -> list[str]:
    import pysam

    # read sequentially: pysam.FastaFile would write a .fai/.gzi next to the read-only data
    with pysam.FastxFile(str(shared_data / GENOME)) as handle:
        genome = next(iter(handle)).sequence
    return [genome[i:i + 64] for i in range(0, 32 * 64, 64)]


def test_two_gloo_ranks_match_one_process(sequences, tmp_path):
    mp.start_processes(worker, args=(free_port(), tmp_path / "ddp", sequences), nprocs=2,
                       start_method="spawn", join=True)
    train(tmp_path / "single", sequences, batch_size=8)
    ddp = load_file(str(tmp_path / "ddp" / "model" / "model.safetensors"))
    single = load_file(str(tmp_path / "single" / "model" / "model.safetensors"))
    assert ddp.keys() == single.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)
    losses = [[json.loads(line)["loss"] for line in
               (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
              for run in ("ddp", "single")]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_torchrun_environment(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_environment() == DistributedContext()
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    context = torchrun_environment()
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.is_distributed and not context.is_main
