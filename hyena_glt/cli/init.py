"""``hyena-glt init DIR``: start a project folder of one's own for the workflow.

The folder gets ``config/config.yaml`` (the bundled example's, with its comments) and its
sheets (``config/genomes.tsv``, ``config/tasks.tsv``, ...), whose rows point at the bundled example
files by absolute path, so the new project dry-runs and runs as it is; the user then replaces
the rows with their own files (paths relative to the project folder, or absolute). Results and
logs land in the project folder; the workflow's own files stay where they are installed
(``snakemake -s .../workflow/Snakefile --directory DIR``, as Snakemake's workflow catalog does).
The profiles are copied too: ``profiles/default`` (local runs: rerun triggers, shell commands
printed) and ``profiles/slurm``, to be edited per project (partition, account).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..errors import ConfigurationError
from ..io import atomic_directory

__all__ = ["register", "workflow_root", "write_project"]

#: Sheet columns holding input files: rewritten to absolute paths of the bundled example.
FILE_COLUMNS = frozenset({"fasta", "table", "annotation", "reference", "vcf", "labels", "input"})


def workflow_root() -> Path:
    """The folder holding ``workflow/Snakefile`` and the bundled example (``config/``,
    ``resources/``): the repository this package was installed from (``pip install -e``)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "workflow" / "Snakefile").is_file():
        raise ConfigurationError(
            f"no workflow/Snakefile beside this installation of hyena_glt ({root}); install "
            "the package from a clone of the repository with `pip install -e .` (as `make` "
            "does), or pass --workflow-root /path/to/the/clone")
    return root


def _absolute_sheet(text: str, root: Path) -> str:
    """A TSV sheet with the relative paths of its file columns made absolute under ``root``."""
    lines = text.splitlines()
    rows = [i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    header = lines[rows[0]].split("\t")
    for index in rows[1:]:
        fields = lines[index].split("\t")
        for column, value in enumerate(fields):
            if header[column] in FILE_COLUMNS and value and not Path(value).is_absolute():
                fields[column] = str(root / value)
        lines[index] = "\t".join(fields)
    return "\n".join(lines) + "\n"


def write_project(directory: Path, root: Path) -> None:
    """Write the config, the sheets and the SLURM profile of a new project into ``directory``.

    Raises:
        ConfigurationError: ``directory`` exists and is not empty.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConfigurationError(f"{directory} exists and is not empty; `hyena-glt init` "
                                 "starts a new project: name a new or empty folder")
    with atomic_directory(directory) as tmp:
        (tmp / "config").mkdir()
        shutil.copy(root / "config" / "config.yaml", tmp / "config" / "config.yaml")
        for sheet in sorted((root / "config").glob("*.tsv")):
            (tmp / "config" / sheet.name).write_text(_absolute_sheet(sheet.read_text(), root))
        # profiles/default (picked up from the folder snakemake runs in) and profiles/slurm
        shutil.copytree(root / "profiles", tmp / "profiles")


def _run(args: argparse.Namespace) -> int:
    root = args.workflow_root.resolve() if args.workflow_root else workflow_root()
    if not (root / "workflow" / "Snakefile").is_file():
        raise ConfigurationError(f"--workflow-root {root}: no workflow/Snakefile there")
    directory = args.directory.resolve()
    write_project(directory, root)
    snakefile = root / "workflow" / "Snakefile"
    print(f"New Hyena-GLT project in {directory}: config/config.yaml, config/genomes.tsv and "
          "config/tasks.tsv list the bundled example; replace their rows with your files.\n"
          f"Run it on this machine:\n  cd {directory} && snakemake -s {snakefile} --cores 2\n"
          f"Run it on SLURM (edit profiles/slurm/config.yaml first: partition, account):\n"
          f"  cd {directory} && snakemake -s {snakefile} --profile profiles/slurm")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``init``."""
    parser = subparsers.add_parser(
        "init", help="start a project folder: config + sheets (the bundled example) to edit",
        description=__doc__.split("\n\n")[1])
    parser.add_argument("directory", type=Path, help="the new project folder (new or empty)")
    parser.add_argument("--workflow-root", type=Path, default=None,
                        help="the hyena-glt clone whose workflow to use (default: the one this "
                             "package was installed from)")
    parser.set_defaults(func=_run)
