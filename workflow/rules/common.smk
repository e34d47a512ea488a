"""Config and sheet validation, and the small input functions every stage uses.

Everything here runs when the workflow is parsed, so a bad config or sheet stops snakemake before
any job starts, with the file, line and field named.
"""

import os
import re
import shlex

import jsonschema
import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")


#: Sheet columns that hold paths of input files (checked to exist when filled in).
FILE_COLUMNS = ("fasta", "table", "annotation", "reference", "vcf", "labels")

#: Sheet columns that hold numbers (read as text, converted here, typed by the schemas).
NUMBER_COLUMNS = ("test_fraction",)

#: What a task's label is, by task type (variant_effect tasks choose in the sheet).
OBJECTIVE_BY_TYPE = {
    "sequence_classification": "classification",
    "token_classification": "classification",
    "regression": "regression",
}


def as_number(text):
    """``text`` as a float when it is one, else unchanged (the schema then names the column)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def reason(error):
    """The schema violation inside snakemake's WorkflowError, with the column it concerns."""
    cause = error.__context__
    if isinstance(cause, jsonschema.ValidationError):
        column = f"column '{cause.path[0]}': " if cause.path else ""
        return column + cause.message
    return str(error)


def read_sheet_lines(path):
    """(line number, fields) of a TSV sheet's header and rows; '#' lines and blank lines skipped."""
    if not os.path.isfile(path):
        raise WorkflowError(f"sheet {path} (named in the config) does not exist")
    with open(path) as handle:
        lines = [
            (number, line.rstrip("\r\n").split("\t"))
            for number, line in enumerate(handle, start=1)
            if line.strip() and not line.startswith("#")
        ]
    if len(lines) < 2:
        raise WorkflowError(f"sheet {path} has no header line and rows")
    return lines


def load_sheet(path, schema, key):
    """Read a TSV sheet, validate each row against ``schema``, index it by the ``key`` column.

    Empty cells are unset (the schema's defaults apply). Errors name the sheet, its line and
    the column; names must be unique and every file listed must exist.
    """
    (_, header), *lines = read_sheet_lines(path)
    records = []
    for number, fields in lines:
        where = f"{path}, line {number}"
        if len(fields) != len(header):
            raise WorkflowError(
                f"{where}: {len(fields)} tab-separated fields, the header has {len(header)}"
            )
        record = {column: value for column, value in zip(header, fields) if value != ""}
        for column in NUMBER_COLUMNS:
            if column in record:
                record[column] = as_number(record[column])
        if isinstance(record.get(key), str):
            where += f" ({key} '{record[key]}')"
        try:
            validate(record, schema)
        except WorkflowError as error:
            raise WorkflowError(f"{where}: {reason(error)}")
        for column in FILE_COLUMNS:
            if column in record and not os.path.exists(record[column]):
                raise WorkflowError(
                    f"{where}: column '{column}': file not found: {record[column]}"
                )
        records.append(record)
    sheet = pd.DataFrame(records, dtype=object)
    duplicated = sheet[key][sheet[key].duplicated()].tolist()
    if duplicated:
        raise WorkflowError(f"{path}: column '{key}': duplicate names {duplicated}")
    return sheet.set_index(key, drop=False)


GENOMES = load_sheet(config["genomes"], "../schemas/genomes.schema.yaml", "genome")
TASKS = load_sheet(config["tasks"], "../schemas/tasks.schema.yaml", "task")
TASKS["objective"] = [
    OBJECTIVE_BY_TYPE.get(kind, objective)
    for kind, objective in zip(TASKS["type"].tolist(), TASKS["objective"].tolist())
]


def names_regex(names):
    """A wildcard constraint matching exactly these names (none: a regex that never matches)."""
    names = list(names)
    return "|".join(re.escape(name) for name in names) if names else "(?!)"


def tasks_of_type(*types):
    """Names of the tasks whose type is one of ``types``."""
    return TASKS.index[TASKS["type"].isin(types)].tolist()


wildcard_constraints:
    genome=names_regex(GENOMES.index),
    task=names_regex(TASKS.index),


def sheet_value(sheet, key, column):
    """Input function: the value of ``column`` in the row of ``sheet`` named by wildcard ``key``."""
    return lambda wildcards: sheet.loc[wildcards[key], column]


def task_setting(column, default):
    """Params function: the task sheet's ``column`` for this task, else the config's ``default``."""

    def value(wildcards):
        setting = TASKS.loc[wildcards.task].get(column)
        return default if setting is None or pd.isna(setting) else setting

    return value


def train_fraction(wildcards):
    """Params function: the fraction of a task's examples used for training (`--split`)."""
    test = task_setting("test_fraction", config["ingest"]["test_fraction"])(wildcards)
    return round(1 - float(test), 6)


def shard_dir(manifest):
    """The shard directory a ``manifest.json`` output describes (what the CLI takes as --out)."""
    return os.path.dirname(manifest)


def genome_manifest(genome):
    return f"results/ingest/genomes/{genome}/manifest.json"


def task_manifests(task):
    """Shard manifests of one task, by name: ``train`` and ``test`` for tasks read from a
    labelled table (split at ingestion), ``windows`` for annotation and variant tasks.
    """
    if TASKS.loc[task, "type"] in ("sequence_classification", "regression"):
        return {
            split: f"results/ingest/tasks/{task}/{split}/manifest.json"
            for split in ("train", "test")
        }
    return {"windows": f"results/ingest/tasks/{task}/manifest.json"}


#: Task sheet column -> option of `hyena-glt ingest vcf` naming the columns of a variant table
#: (--table) or of a VCF's label table (--labels).
VARIANT_COLUMN_OPTIONS = {
    "chrom": "--chrom",
    "chrom_column": "--chrom-column",
    "pos_column": "--pos-column",
    "ref_column": "--ref-column",
    "alt_column": "--alt-column",
}


def variant_inputs(wildcards):
    """Input function: the reference plus the VCF (and its label table) or the variant table."""
    row = TASKS.loc[wildcards.task]
    files = {"reference": row["reference"]}
    for column in ("vcf", "labels", "table"):
        if isinstance(row.get(column), str):
            files[column] = row[column]
    return files


def variant_source_arguments(wildcards, input):
    """Params function: where `hyena-glt ingest vcf` reads the variants and their labels."""
    row = TASKS.loc[wildcards.task]
    if "vcf" in input.keys():
        arguments = ["--vcf", input.vcf]
        if isinstance(row.get("label_info"), str):
            arguments += ["--label-info", row["label_info"]]
        tabular = "labels" in input.keys()
        if tabular:
            arguments += [
                "--labels",
                input.labels,
                "--label-column",
                row["label_column"],
            ]
    else:
        tabular = True
        arguments = ["--table", input.table, "--label-column", row["label_column"]]
    if tabular:
        for column, option in VARIANT_COLUMN_OPTIONS.items():
            if isinstance(row.get(column), str):
                arguments += [option, row[column]]
    return " ".join(shlex.quote(str(argument)) for argument in arguments)


def ingest_outputs():
    genomes = [genome_manifest(genome) for genome in GENOMES.index]
    tasks = [path for task in TASKS.index for path in task_manifests(task).values()]
    return genomes + tasks


def final_outputs():
    """What `snakemake` builds by default; later stages add their outputs here."""
    return ingest_outputs()
