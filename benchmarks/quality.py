"""Model quality on the real data: Hyena-GLT beside baselines trained on the same split (issue 8).

Run (from the repository root)::

    python benchmarks/quality.py --tasks promoters,enhancers,multiloc --seeds 0,1,2
    python benchmarks/quality.py --tasks promoters --seeds 0 --quick   # seconds, for tests

Every task in :data:`TASKS` is a function ``run(seed, quick, out_dir) -> list[dict]`` in
``benchmarks/quality_tasks/`` (see its ``__init__``), imported only when named, so a task
module that is not written yet does not stop the others. For each (task, seed) the rows go to
``OUT/<task>/seed<k>.csv`` as soon as that run finishes (``seed<k>.quick.csv`` with
``--quick``); then ``OUT/results.csv`` (all rows of this mode found under ``OUT``, so separate
invocations for different tasks add up) and ``OUT/summary.md`` (mean +- std over seeds per task
and model, with the commands that reproduce it) are rewritten; ``--summarize-only`` just
rewrites those two. All files are written atomically.

Training uses ``--threads`` torch threads (default 1) and fixed epoch/step budgets, so numbers
are reproducible; ``train_s`` (wall time of fitting) depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # quality_tasks, run as a script

from quality_tasks import ROW_FIELDS, SHARED_DATA_ENV  # noqa: E402

from hyena_glt.errors import ConfigurationError, DataError, HyenaGLTError  # noqa: E402
from hyena_glt.io import atomic_file  # noqa: E402

__all__ = ["TASKS", "HEADLINE_COLUMNS", "load_task", "run", "summarize", "collect_results",
           "summary_table", "reproduce_commands", "write_summary", "main"]

logger = logging.getLogger("quality")

#: Task name -> "module:function" in benchmarks/quality_tasks.
TASKS: dict[str, str] = {
    "promoters": "sequence:promoters",
    "enhancers": "sequence:enhancers",
    "multiloc": "sequence:multiloc",
    "promoters_pretraining": "ablations:promoters_pretraining",
    "promoters_merging": "ablations:promoters_merging",
    "enhancers_merging": "ablations:enhancers_merging",
    "multiloc_merging": "ablations:multiloc_merging",
    "promoters_kmer_path": "ablations:promoters_kmer_path",
    "enhancers_kmer_path": "ablations:enhancers_kmer_path",
    "cds_kmer_path": "ablations:cds_kmer_path",
    "cds": "cds:run",
    "brca1": "variants:run",
    "variant_direction": "variant_direction:run",
}

#: Summary columns: heading -> metric names that fill it (the first one a task reports).
HEADLINE_COLUMNS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy",),
    "F1": ("f1_macro", "f1"),
    "AUROC": ("auroc",),
}

CAVEAT = (
    "Published Genomic Benchmarks numbers (human_nontata_promoters: CNN 84.6%, HyenaDNA 96.6%; "
    "human_enhancers_cohn: CNN 69.5%, HyenaDNA 74.2%) are context only, not comparable: they "
    "were trained on the official TRAIN splits (27,097 / 20,843 sequences), which are not "
    "available here. Every model in this table was trained on 70% of the official TEST split "
    "(stratified, random_state=0, the same split for every seed) and scored on the other 30%; "
    "seeds vary only the training randomness.")


def load_task(name: str) -> Callable[[int, bool, Path], list[dict]]:
    """The task function registered as ``name``, imported now.

    Raises:
        ConfigurationError: unknown name, or its module is not (yet) in quality_tasks.
    """
    if name not in TASKS:
        raise ConfigurationError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    module_name, function_name = TASKS[name].split(":")
    qualified = f"quality_tasks.{module_name}"
    try:
        module = importlib.import_module(qualified)
    except ModuleNotFoundError as err:
        if err.name != qualified:
            raise
        raise ConfigurationError(
            f"task {name!r} needs benchmarks/quality_tasks/{module_name}.py, which does not "
            "exist (yet); leave it out of --tasks") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigurationError(f"task {name!r}: quality_tasks/{module_name}.py has no "
                                 f"function {function_name}()")
    return function


def _rows_path(out_dir: Path, task: str, seed: int, quick: bool) -> Path:
    return out_dir / task / (f"seed{seed}.quick.csv" if quick else f"seed{seed}.csv")


def _check_rows(rows: list[dict], task: str, seed: int) -> pd.DataFrame:
    if not rows:
        raise DataError(f"task {task!r} seed {seed} returned no rows")
    frame = pd.DataFrame(rows)
    missing = [name for name in ROW_FIELDS if name not in frame.columns]
    if missing:
        raise DataError(f"task {task!r} seed {seed}: rows lack {', '.join(missing)} "
                        f"(expected {', '.join(ROW_FIELDS)})")
    return frame[list(ROW_FIELDS)]


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)


def _row_files(out_dir: Path, quick: bool) -> list[Path]:
    """``OUT/<task>/seed<k>[.quick].csv`` files of this mode, sorted."""
    pattern = "*/seed*.quick.csv" if quick else "*/seed*.csv"
    return sorted(p for p in out_dir.glob(pattern) if quick or not p.name.endswith(".quick.csv"))


def collect_results(out_dir: Path, quick: bool) -> pd.DataFrame:
    """Every per-(task, seed) row file of this mode under ``out_dir``, concatenated."""
    paths = _row_files(out_dir, quick)
    if not paths:
        return pd.DataFrame(columns=list(ROW_FIELDS))
    frame = pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)
    frame["value"] = pd.to_numeric(frame["value"])
    return frame


def _mean_std(values: pd.Series, digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Task x model: seeds, mean ± std (sample std over seeds) of the headline metrics,
    mean training seconds, train/test sizes and any other metrics."""
    records = []
    for (task, model), group in results.groupby(["task", "model"], sort=False):
        by_metric = {metric: part["value"] for metric, part in group.groupby("metric")}
        record = {"task": task, "model": model, "seeds": group["seed"].nunique()}
        used: set[str] = set()
        for heading, names in HEADLINE_COLUMNS.items():
            name = next((n for n in names if n in by_metric), None)
            record[heading] = _mean_std(by_metric[name]) if name else ""
            used.add(name or "")
        per_seed = group.drop_duplicates("seed")
        record["train s"] = f"{per_seed['train_s'].mean():.0f}"
        record["n train / test"] = f"{per_seed['n_train'].iloc[0]} / {per_seed['n_test'].iloc[0]}"
        record["other"] = "; ".join(f"{name} {_mean_std(values, 0 if values.abs().max() >= 100 else 3)}"
                                    for name, values in by_metric.items() if name not in used)
        record["note"] = "; ".join(sorted({n for n in group["note"].astype(str) if n}))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _verdicts(results: pd.DataFrame) -> list[str]:
    """Per task with a ``hyena_glt`` model: does its mean accuracy beat every other model's?"""
    lines = []
    accuracy = results[results["metric"] == "accuracy"]
    for task, group in accuracy.groupby("task", sort=False):
        means = group.groupby("model")["value"].mean()
        baselines = means[~means.index.str.startswith("hyena_glt")]
        if "hyena_glt" not in means or baselines.empty:
            continue
        best = baselines.idxmax()
        margin = means["hyena_glt"] - baselines.max()
        verdict = "beats" if margin > 0 else "trails"
        lines.append(f"- {task}: Hyena-GLT {verdict} the best baseline ({best}) by "
                     f"{abs(margin) * 100:.1f} accuracy points (means over seeds).")
    return lines


def reproduce_commands(out_dir: Path, quick: bool) -> list[str]:
    """Commands that rebuild the row files under ``out_dir``: one per set of seeds.

    Tasks are the registered names (the row files' folders), not the ``task`` column, which
    a task module may split further (e.g. one task per train/test genome pair).
    """
    seeds: dict[str, list[int]] = {}
    for path in _row_files(out_dir, quick):
        seeds.setdefault(path.parent.name, []).append(int(path.name.split(".")[0][4:]))
    groups: dict[str, list[str]] = {}
    for task, values in seeds.items():
        groups.setdefault(",".join(str(v) for v in sorted(values)), []).append(task)
    flag = " --quick" if quick else ""
    return [f"python benchmarks/quality.py --tasks {','.join(tasks)} --seeds {key}{flag}"
            for key, tasks in groups.items()]


def write_summary(results: pd.DataFrame, path: Path, commands: Sequence[str] = ()) -> None:
    """``summary.md``: the table, the verdicts, the commands that reproduce it and the caveat."""
    commands = [f"    {line}" for line in commands]
    text = [
        "# Hyena-GLT quality on real data (issue 8)", "",
        "Reproduce (from the repository root; add `--out DIR` to write elsewhere):", "",
        *commands, "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch threads "
        f"{torch.get_num_threads()}. Values are mean ± sample std over seeds (one value when "
        "there is one seed); `train s` is the mean wall time of fitting one model.", "",
        _markdown(summary_table(results)) if len(results) else "(no results yet)", "",
        *_verdicts(results), "",
        f"**Caveat.** {CAVEAT}", "",
    ]
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(text))


def run(tasks: Sequence[str], seeds: Sequence[int], quick: bool, out_dir: Path
        ) -> pd.DataFrame:
    """Run every (task, seed), save its rows, then rewrite results.csv and summary.md.

    Returns:
        All rows of this mode under ``out_dir`` (earlier runs of other tasks included).
    """
    functions = {name: load_task(name) for name in tasks}  # fail before any training
    for name, function in functions.items():
        for seed in seeds:
            start = time.perf_counter()
            logger.info("task %s seed %d: start", name, seed)
            frame = _check_rows(function(seed, quick, out_dir / name), name, seed)
            _write_csv(frame, _rows_path(out_dir, name, seed, quick))
            logger.info("task %s seed %d: done in %.0f s", name, seed,
                        time.perf_counter() - start)
            summarize(out_dir, quick)
    return collect_results(out_dir, quick)


def summarize(out_dir: Path, quick: bool) -> pd.DataFrame:
    """Rewrite ``results.csv`` and ``summary.md`` from the row files under ``out_dir``."""
    results = collect_results(out_dir, quick)
    _write_csv(results, out_dir / "results.csv")
    write_summary(results, out_dir / "summary.md", reproduce_commands(out_dir, quick))
    return results


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}"
                                         ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="promoters,enhancers,multiloc,cds,brca1",
                        help=f"comma-separated, from: {', '.join(TASKS)}")
    parser.add_argument("--seeds", type=_int_list, default=[0, 1, 2],
                        help="training seeds (the split is fixed)")
    parser.add_argument("--quick", action="store_true",
                        help="a few hundred rows and a handful of steps (for tests)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/quality"))
    parser.add_argument("--shared-data", type=Path, default=None,
                        help=f"the shared/data folder (default: beside the repository; "
                             f"or ${SHARED_DATA_ENV})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="train nothing: rewrite results.csv and summary.md from the row "
                             "files already under --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.shared_data is not None:
        os.environ[SHARED_DATA_ENV] = str(args.shared_data.resolve())
    torch.set_num_threads(args.threads)
    tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    try:
        results = (summarize(args.out, args.quick) if args.summarize_only
                   else run(tasks, args.seeds, args.quick, args.out))
    except HyenaGLTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(results)} rows -> {args.out / 'results.csv'}; table in "
          f"{args.out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
