"""Build ``hyena-glt-base``: the small pretrained model shipped in ``hyena_glt/assets``.

One command reruns the whole recipe (CPU by default; ``--device cuda`` on a GPU):

    python benchmarks/train_base_model.py --shared-data ../shared/data --work /tmp/hyena-glt-base

Steps (each is skipped when its output already exists in ``--work``, so a rerun resumes):

1. ``hyena-glt ingest fasta --window 4096`` of three complete Klebsiella pneumoniae genomes
   (training) and of a fourth, Kp1084 (held out: never seen in training);
2. ``hyena-glt pretrain`` with :data:`BASE_CONFIG` and its length curriculum (1024 -> 4096);
3. export: the weights stored as bfloat16 safetensors (half the size; loaded back into float32);
4. held-out perplexity of the exported weights on evenly spaced Kp1084 windows (4096 and 1024
   nt of context) and on the SARS-CoV-2 genome (out of domain), beside an order-k Markov chain
   fitted on the same training genomes;
5. fine-tuning from the base vs from scratch (the same config with random weights, the same
   seed, steps and split) on ``resources/promoters`` (stratified 70/30 split);
6. ``MODEL_CARD.md`` and ``evaluation.json`` written with the numbers, and the model directory
   written to ``--out`` (default ``hyena_glt/assets/hyena-glt-base``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hyena_glt.io import atomic_directory  # noqa: E402

logger = logging.getLogger("train_base_model")

GENOME_DIR = "genomes/klebsiella_pneumoniae"
TRAIN_GENOMES = ("Klebs_HS11286.fna.gz", "MGH78578.fna.gz", "NTUH-K2044.fna.gz")
HELD_OUT_GENOME = "Klebs_Kp1084.fna.gz"
WINDOW = 4096
#: The model and training settings (HyenaGLTConfig fields + the curriculum), written to
#: ``base_config.yaml`` and passed to ``hyena-glt pretrain --config``.
BASE_CONFIG: dict[str, Any] = {
    "d_model": 128, "n_layers": 4, "sequence_length": WINDOW, "num_heads": 4,
    "filter_order": 32, "vocab_size": 4096, "dropout": 0.0, "learning_rate": 0.002,
    "warmup_steps": 5, "batch_size": 4, "num_epochs": 1, "seed": 0,
    "curriculum": "1024:600s,4096:100s",
}
HELD_OUT_WINDOWS = 16  # evenly spaced over the held-out genome
MARKOV_ORDER = 6
PROMOTERS = REPO / "resources/promoters/human_nontata_promoters.test_subset2000.csv.gz"
SARS_COV_2 = REPO / "resources/genomes/NC_045512.2.fa.gz"
CHLOROPLAST = (REPO / "resources/genomes/NC_000932.1.fa.gz",
               REPO / "resources/annotation/NC_000932.1.gff3.gz")
#: The fine-tuning comparisons (base vs scratch): settings per bundled task. Promoters: a
#: stratified 70/30 split and a 400-row training subset; chloroplast CDS: per-base labels,
#: 1024-nt windows, 20% of the genome held out (``ingest_annotation(split=0.8)``; the card's
#: numbers were measured when that split held out one stretch, before the block split).
FINETUNE: dict[str, dict[str, Any]] = {
    "promoters": {"num_epochs": 1, "batch_size": 16, "backbone_lr": 1e-3, "warmup_steps": 5,
                  "dropout": 0.1, "seed": 0, "test_size": 0.3, "train_rows": 400},
    "chloroplast_cds": {"num_epochs": 3, "batch_size": 8, "backbone_lr": 1e-3,
                        "warmup_steps": 5, "dropout": 0.1, "seed": 0, "window": 1024,
                        "split": 0.8},
}
TUNER_FIELDS = ("batch_size", "backbone_lr", "warmup_steps", "dropout", "seed")


CARD_TEMPLATE = """# hyena-glt-base

A small Hyena-GLT causal DNA language model (next-nucleotide prediction) pretrained with the
project's own `hyena-glt pretrain`, shipped inside the package so that
`FineTuner(pretrained_model="hyena-glt-base", ...)` works on a fresh install with no network.
A model registered locally under the same name (`hyena-glt pretrain ... --register
hyena-glt-base`, or `hyena-glt register-model`) takes precedence over this one.

**It is a tiny model (1.76M parameters, {tokens_seen:,} training nucleotides, minutes of
training).** It exists so that the fine-tuning path, the examples and the tests run end to end
offline, and as a starting point for bacterial-like gene structure (see the fine-tuning table);
it is not a genomic foundation model. Rebuild a larger one with the same recipe on a GPU
(`--device cuda`, a longer curriculum, a larger `d_model` in `BASE_CONFIG`).

## Data
- Training: three complete *Klebsiella pneumoniae* genomes (chromosomes and plasmids, forward
  strand): {train_genomes}, from Debian's `kleborate-examples` (NCBI GenBank; see
  `shared/data/SOURCES.md`), cut into non-overlapping 4096-nt windows with
  `hyena-glt ingest fasta --window 4096`.
- Held out (never seen in training): the fourth genome, {held_out} (strain Kp1084), and the
  SARS-CoV-2 reference genome NC_045512.2 (out of domain).

## Config
```yaml
{config}
```
Training used `hyena-glt pretrain` with this file as `--config` (HyenaGLTConfig fields; causal
LM objective; AdamW + warm-up/cosine; the length curriculum crops the 4096-nt windows to
1024 nt first, then trains on full 4096-nt windows with the same tokens per step). Weights are
stored as bfloat16 (loaded into float32).

## Training command
```
{command}
```
which runs `{pretrain_command}` (plus the ingest, export and evaluation steps).
Wall time of pretraining: {pretrain_wall_s:.0f} s on `{device}` with {threads} threads;
{steps} optimizer steps, {tokens_seen:,}
nucleotides ({tokens_per_s_overall:.0f} nucleotides/s over the whole run, start-up and
checkpoints included; median of the logged intervals: {throughput}); training loss
{last_logged_loss:.4f} nats at step {last_logged_step} (the last logged step).

## Held-out perplexity
Next-nucleotide perplexity of the stored (bfloat16) weights; Kp1084: {held_out_windows} 4096-nt
windows evenly spaced over the genome. Uniform guessing is 4.0; the reference column is an
order-{markov_order} Markov chain (add-one smoothing) fitted on the same training genomes.

| genome | context (nt) | nucleotides | perplexity | bits/nt | order-{markov_order} Markov perplexity |
|---|---|---|---|---|---|
{perplexity_rows}

## Fine-tuning from the base vs from scratch
Two bundled tasks; each pair of runs has the same config, seed, steps and settings, the only
difference being the initial backbone weights (this model, or the same architecture randomly
initialised with seed 0), and is scored on held-out data:

- promoters: human non-TATA promoters (`resources/promoters`, 251 nt, promoter vs not),
  stratified 70/30 split (`random_state=0`), a stratified 400-row subset of the training part,
  600 test sequences ({finetune});
- chloroplast_cds: per-base CDS vs not on the *Arabidopsis* chloroplast genome
  (`resources/genomes`, `resources/annotation`), 1024-nt windows, one seeded 20% stretch of the
  genome held out (the split of `ingest_annotation(split=0.8)` at the time; it now holds out
  window-sized blocks spread over the genome) ({cds}); F1 (class 1) is the CDS class.

{finetune_rows}

## Good for / not good for
- Good for: trying the API and the workflow offline; tests; a starting point whose shapes,
  tokenizer (DNA characters + 4096 hash n-gram buckets) and config match the package.
- Good for: starting per-base annotation of bacterial-like genomes (plastids are of
  cyanobacterial origin): on the chloroplast CDS task it beats random initialisation by a wide
  margin (table above), because next-nucleotide prediction on bacterial genomes, which are
  mostly coding, teaches codon structure.
- Not good for: human sequence tasks (on promoters it does not beat random initialisation:
  the bacterial pretraining data share little with human promoters) and any biological
  conclusion. It is only a little better than an order-{markov_order} Markov chain on the
  held-out genome; zero-shot variant scores from it carry no signal for human variants (BRCA1
  AUROC about 0.5).

## Fine-tuning it for per-base annotation
Per-base tasks (e.g. CDS) train best with the k-mer path (on by default for per-base task
types) and `rc_average=True`: the head also reads the codon usage of each reading frame around
every base, which a few hundred labelled windows cannot teach the backbone. The workflow's recipe
(`finetune.by_task_type.token_classification` in `config/config.yaml`: head_only, 20 epochs of
batch 8, head lr 0.01), fine-tuning the example workflow's own pretrained model, took the
example chloroplast CDS task from held-out AUROC 0.674 to 0.932-0.936 and MCC 0.71-0.72 (3
seeds; benchmarks/quality_results.md, issue 20). Sequence tasks showed no gain
from the path on the example promoters, so it stays off for them.
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hyena_glt", *args]


def _run(command: list[str]) -> float:
    """Run a CLI step; returns its wall time in seconds."""
    logger.info("$ %s", " ".join(command))
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - start


def ingest(shared: Path, work: Path) -> None:
    genomes = shared / GENOME_DIR
    for name, files in (("train", TRAIN_GENOMES), ("heldout", (HELD_OUT_GENOME,))):
        if not (work / name / "manifest.json").is_file():
            _run(_cli("ingest", "fasta", *(str(genomes / f) for f in files),
                      "--window", str(WINDOW), "--out", str(work / name)))


def pretrain_command(work: Path, device: str, threads: int) -> list[str]:
    return _cli("pretrain", "--data", str(work / "train"), "--config",
                str(work / "base_config.yaml"), "--out", str(work / "model"), "--device", device,
                "--threads", str(threads), "--log-steps", "20")


def pretrain(work: Path, device: str, threads: int) -> dict[str, Any]:
    """Train (or resume); the wall time of the run that finished is kept in timing.json."""
    timing = work / "timing.json"
    if not (work / "model" / "config.json").is_file():
        (work / "base_config.yaml").write_text(yaml.safe_dump(BASE_CONFIG, sort_keys=False))
        wall = _run(pretrain_command(work, device, threads))
        timing.write_text(json.dumps({"pretrain_wall_s": wall, "device": device,
                                      "threads": threads}))
    info = json.loads(timing.read_text()) if timing.is_file() else {}
    rows = [json.loads(line) for line in (work / "model.run" / "metrics.jsonl").open()
            if '"tokens_per_s"' in line]
    for stage in sorted({row["max_length"] for row in rows}):
        speeds = [row["tokens_per_s"] for row in rows if row["max_length"] == stage]
        info[f"tokens_per_s_at_{stage}"] = float(np.median(speeds))
    state = json.loads((work / "model" / "training_config.json").read_text())["state"]
    info["tokens_seen"] = state["tokens_seen"]
    info["steps"] = state["global_step"]
    info["last_logged_step"] = rows[-1]["step"]
    info["last_logged_loss"] = rows[-1]["loss"]
    info["tokens_per_s_overall"] = state["tokens_seen"] / info["pretrain_wall_s"] \
        if "pretrain_wall_s" in info else None
    return info


def export(work: Path, out_dir: Path) -> Path:
    """Model directory with bfloat16-stored weights (float tensors only) under work/export."""
    from safetensors.torch import load_file, save_file

    target = work / "export"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(work / "model" / name, target / name)
    state = load_file(str(work / "model" / "model.safetensors"))
    state = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous()
             for k, v in state.items()}
    save_file(state, str(target / "model.safetensors"),
              metadata={"architecture": "HyenaGLTForCausalLM", "stored_dtype": "bfloat16"})
    return target


def _shard_rows(shard_dir: Path) -> list[np.ndarray]:
    """Token ids of every window of a shard directory (binary or list columns)."""
    table = pq.read_table(sorted(shard_dir.glob("*.parquet")), columns=["input_ids"])
    return [np.frombuffer(row, dtype=np.uint8).astype(np.int64) if isinstance(row, bytes)
            else np.asarray(row, dtype=np.int64) for row in table.column("input_ids").to_pylist()]


def _heldout_windows(work: Path) -> list[np.ndarray]:
    rows = _shard_rows(work / "heldout")
    picks = np.linspace(0, len(rows) - 1, HELD_OUT_WINDOWS).round().astype(int)
    return [rows[i] for i in picks]


def _fasta_windows(path: Path, tokenizer: Any) -> list[np.ndarray]:
    import pysam

    with pysam.FastaFile(str(path)) as fasta:
        sequence = fasta.fetch(fasta.references[0]).upper()
    ids = np.asarray(tokenizer.encode(sequence), dtype=np.int64)
    return [ids[i:i + WINDOW] for i in range(0, len(ids) - WINDOW + 1, WINDOW)]


@torch.no_grad()
def _model_nats(model: torch.nn.Module, windows: list[np.ndarray], context: int) -> float:
    """Mean next-nucleotide cross-entropy (nats) over chunks of ``context`` nucleotides."""
    total, count = 0.0, 0
    chunks = [w[i:i + context] for w in windows for i in range(0, len(w), context)]
    for start in range(0, len(chunks), 4):
        ids = torch.as_tensor(np.stack(chunks[start:start + 4]))
        logits = model(ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                                                 reduction="sum")
        total += float(loss)
        count += ids[:, 1:].numel()
    return total / count


class MarkovChain:
    """Order-k nucleotide Markov chain with add-one smoothing: a reference perplexity."""

    def __init__(self, order: int, symbols: dict[int, int]) -> None:
        self.order, self.symbols = order, symbols
        self.base = max(symbols.values()) + 2  # + "other" (N, padding)
        self.counts = np.ones((self.base ** order, self.base), dtype=np.float64)

    def _codes(self, ids: np.ndarray) -> np.ndarray:
        lookup = np.full(256, self.base - 1, dtype=np.int64)
        for token, code in self.symbols.items():
            lookup[token] = code
        return lookup[ids]

    def _contexts(self, codes: np.ndarray) -> np.ndarray:
        padded = np.concatenate([np.full(self.order, self.base - 1), codes])
        context = np.zeros(len(codes), dtype=np.int64)
        for lag in range(self.order, 0, -1):
            context = context * self.base + padded[self.order - lag:len(padded) - lag]
        return context

    def fit(self, sequences: list[np.ndarray]) -> MarkovChain:
        for ids in sequences:
            codes = self._codes(ids)
            np.add.at(self.counts, (self._contexts(codes), codes), 1)
        return self

    def nats(self, windows: list[np.ndarray], context: int) -> float:
        probs = self.counts / self.counts.sum(axis=1, keepdims=True)
        total, count = 0.0, 0
        for w in windows:
            for i in range(0, len(w), context):
                codes = self._codes(w[i:i + context])
                p = probs[self._contexts(codes), codes][1:]  # same positions as the model
                total -= float(np.log(p).sum())
                count += len(p)
        return total / count


def heldout_perplexity(work: Path, model_dir: Path) -> dict[str, Any]:
    from hyena_glt.data import CharTokenizer
    from hyena_glt.model import HyenaGLTForCausalLM

    model = HyenaGLTForCausalLM.from_pretrained(model_dir).eval()
    tokenizer = CharTokenizer.load(model_dir / "tokenizer.json")
    symbols = {tokenizer.encode(base)[0]: i for i, base in enumerate("ACGT")}
    markov = MarkovChain(MARKOV_ORDER, symbols).fit(_shard_rows(work / "train"))
    sets = {"klebsiella_kp1084": _heldout_windows(work),
            "sars_cov_2": _fasta_windows(SARS_COV_2, tokenizer)}
    results: dict[str, Any] = {}
    for name, windows in sets.items():
        for context in (1024, WINDOW):
            nats = _model_nats(model, windows, context)
            ref = markov.nats(windows, context)
            results[f"{name}@{context}"] = {
                "nucleotides": sum(len(w) for w in windows), "perplexity": math.exp(nats),
                "bits_per_nt": nats / math.log(2), "markov6_perplexity": math.exp(ref)}
            logger.info("%s @%d: perplexity %.4f (order-%d Markov %.4f)", name, context,
                        math.exp(nats), MARKOV_ORDER, math.exp(ref))
    return results


def _promoter_data(tokenizer: Any, settings: dict[str, Any]) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from hyena_glt.data import GenomicDataset

    table = pd.read_csv(PROMOTERS)
    train, test = train_test_split(table, test_size=settings["test_size"],
                                   stratify=table["label"], random_state=0)
    train, _ = train_test_split(train, train_size=settings["train_rows"],
                                stratify=train["label"], random_state=0)
    return tuple(GenomicDataset(frame["sequence"].tolist(), frame["label"].tolist(),
                                tokenizer=tokenizer, max_length=256) for frame in (train, test))


def _chloroplast_data(tokenizer: Any, settings: dict[str, Any], work: Path) -> tuple[Any, Any]:
    from hyena_glt.data import GenomeAnnotationDataset
    from hyena_glt.ingest.annotation import ingest_annotation

    shards = work / "chloroplast_cds"
    if not (shards / "test" / "manifest.json").is_file():
        ingest_annotation(*CHLOROPLAST, shards, feature="CDS", window=settings["window"],
                          split=settings["split"], tokenizer=tokenizer)
    return tuple(GenomeAnnotationDataset(shards / part, max_length=settings["window"])
                 for part in ("train", "test"))


def finetune_arm(model_dir: Path, work: Path, task: str, arm: str) -> dict[str, float]:
    """Fine-tune ``model_dir`` (the base, or the same config with random weights) on one
    bundled task of :data:`FINETUNE`; its test metrics and the training wall time."""
    from hyena_glt.training import FineTuner

    settings = FINETUNE[task]
    task_type = "sequence_classification" if task == "promoters" else "token_classification"
    tuner = FineTuner(model_dir, task_type=task_type, num_classes=2,
                      output_dir=work / f"finetune_{task}_{arm}",
                      **{k: settings[k] for k in TUNER_FIELDS})
    train, test = (_promoter_data(tuner.tokenizer, settings) if task == "promoters"
                   else _chloroplast_data(tuner.tokenizer, settings, work))
    start = time.perf_counter()
    tuner.finetune(train, num_epochs=settings["num_epochs"])
    wall = time.perf_counter() - start
    assert tuner.trainer is not None
    metrics = tuner.trainer.evaluate(test)
    result = {k.removeprefix("eval_"): float(v) for k, v in metrics.items()}
    result["train_wall_s"] = wall
    logger.info("%s from %s: %s", task, arm, result)
    return result


def scratch_model(work: Path) -> Path:
    """The base's config (as ``hyena-glt pretrain`` builds it from :data:`BASE_CONFIG` and the
    shards' tokenizer) with freshly initialised (seed 0) weights."""
    from hyena_glt.config import HyenaGLTConfig
    from hyena_glt.data import CharTokenizer
    from hyena_glt.data.shards import read_manifest
    from hyena_glt.model import HyenaGLTForCausalLM
    from hyena_glt.training import seed_everything

    tokenizer = CharTokenizer.from_dict(read_manifest(work / "train")["tokenizer"])
    fields = {k: v for k, v in BASE_CONFIG.items() if k != "curriculum"}
    config = HyenaGLTConfig.from_dict({**fields, "alphabet_size": len(tokenizer),
                                       "task_type": "dna_sequence_modeling"})
    seed_everything(0)
    return HyenaGLTForCausalLM(config).save_pretrained(work / "scratch", tokenizer)


def _cached(path: Path, compute: Any) -> Any:
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.write_text(json.dumps(value, indent=2))
    return value


def model_card(info: dict[str, Any], ppl: dict[str, Any], finetune: dict[str, Any],
               command: str) -> str:
    template = CARD_TEMPLATE
    rows = "\n".join(
        f"| {name.split('@')[0]} | {name.split('@')[1]} | {r['nucleotides']:,} | "
        f"{r['perplexity']:.4f} | {r['bits_per_nt']:.4f} | {r['markov6_perplexity']:.4f} |"
        for name, r in ppl.items())
    ft = "\n".join([
        "| task | initial weights | accuracy | F1 (macro) | F1 (class 1) | AUROC |",
        "|---|---|---|---|---|---|"] + [
        f"| {task} | {'hyena-glt-base' if arm == 'base' else 'random (scratch)'} | "
        f"{r['accuracy']:.4f} | {r.get('f1_macro', float('nan')):.4f} | "
        f"{r.get('f1/1', float('nan')):.4f} | {r.get('auroc', float('nan')):.4f} |"
        for task, arms in finetune.items() for arm, r in arms.items()]
    ) if finetune else "(not measured in this build)"
    return template.format(
        config=yaml.safe_dump(BASE_CONFIG, sort_keys=False).strip(), command=command,
        train_genomes=", ".join(TRAIN_GENOMES), held_out=HELD_OUT_GENOME,
        perplexity_rows=rows, finetune_rows=ft,
        finetune=json.dumps(FINETUNE["promoters"]), cds=json.dumps(FINETUNE["chloroplast_cds"]),
        held_out_windows=HELD_OUT_WINDOWS, markov_order=MARKOV_ORDER, throughput=", ".join(
            f"{v:.0f} at {k.rsplit('_', 1)[1]} nt" for k, v in info.items()
            if k.startswith("tokens_per_s_at_")), **info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data",
                        help="folder holding genomes/klebsiella_pneumoniae (default ../shared/data)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hyena-glt-base"),
                        help="scratch folder for shards, the run and fine-tuning")
    parser.add_argument("--out", type=Path, default=REPO / "hyena_glt/assets/hyena-glt-base")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--curriculum", default=BASE_CONFIG["curriculum"],
                        help="length curriculum LENGTH:STEPSs,... (default %(default)s; "
                        "scale it up on a GPU)")
    parser.add_argument("--batch-size", type=int, default=BASE_CONFIG["batch_size"],
                        help="sequences per optimizer step at the first stage (default "
                        "%(default)s; 32 on a GPU)")
    parser.add_argument("--warmup-steps", type=int, default=BASE_CONFIG["warmup_steps"])
    parser.add_argument("--skip-finetune", action="store_true",
                        help="no base-vs-scratch comparison (the card then has no such table)")
    args = parser.parse_args(argv)
    BASE_CONFIG.update(curriculum=args.curriculum, batch_size=args.batch_size,
                       warmup_steps=args.warmup_steps)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)

    ingest(args.shared_data, args.work)
    info = pretrain(args.work, args.device, args.threads)
    exported = export(args.work, args.out)
    ppl = _cached(args.work / "perplexity.json", lambda: heldout_perplexity(args.work, exported))
    finetune: dict[str, dict[str, Any]] = {}
    if not args.skip_finetune:
        scratch = scratch_model(args.work)
        for task in FINETUNE:
            finetune[task] = {
                arm: _cached(args.work / f"finetune_{task}_{arm}.json",
                             lambda model=model, task=task, arm=arm: finetune_arm(
                                 model, args.work, task, arm))
                for arm, model in (("base", exported), ("scratch", scratch))}
    command = " ".join(["python benchmarks/train_base_model.py", *(argv or sys.argv[1:])])
    info["pretrain_command"] = " ".join(["hyena-glt", *pretrain_command(
        Path("WORK"), args.device, args.threads)[3:]])
    with atomic_directory(args.out) as tmp:
        for name in ("config.json", "tokenizer.json", "model.safetensors"):
            shutil.copy(exported / name, tmp / name)
        (tmp / "evaluation.json").write_text(json.dumps(
            {"training": info, "heldout": ppl, "finetune": finetune,
             "base_config": BASE_CONFIG, "finetune_settings": FINETUNE}, indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(model_card(info, ppl, finetune, command))
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
