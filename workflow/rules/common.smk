"""Config and sheet validation, and the small input functions every stage uses.

Everything here runs when the workflow is parsed, so a bad config or sheet stops snakemake before
any job starts, with the file, line and field named.
"""

import os
import re
import shlex

import jsonschema
import pandas as pd
import yaml
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
#: Rows of the optional predict sheet (models applied to the user's files; rules/predict.smk).
PREDICTIONS = (
    load_sheet(config["predict"], "../schemas/predict.schema.yaml", "name")
    if config.get("predict")
    else pd.DataFrame(columns=["name", "model", "input", "kind"]).set_index(
        "name", drop=False
    )
)


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


def split_arguments(wildcards):
    """Params: how a task's examples are split, as the task row says: a table column naming
    each row's part, contigs held out whole, or else a seeded random `test_fraction`."""
    row = TASKS.loc[wildcards.task]
    if isinstance(row.get("split_column"), str):
        return f"--split-column {shlex.quote(row['split_column'])}"
    if isinstance(row.get("test_contigs"), str):
        return f"--test-contigs {shlex.quote(row['test_contigs'])}"
    return f"--split {train_fraction(wildcards)} --seed {config['seed']}"


def annotation_inputs(wildcards):
    """Input function: the annotation, and the FASTA unless the annotation is GenBank."""
    row = TASKS.loc[wildcards.task]
    files = {"annotation": row["annotation"]}
    if isinstance(row.get("fasta"), str):
        files["fasta"] = row["fasta"]
    return files


def duplicates_flag(wildcards):
    """Params function: how `hyena-glt ingest annotation` treats held-out windows that repeat
    training sequence (the schema fills in the 0.5 default)."""
    threshold = config["ingest"]["annotation"].get("duplicate_threshold", 0.5)
    return (
        "--keep-duplicates"
        if threshold is None
        else f"--duplicate-threshold {threshold}"
    )


def shard_dir(manifest):
    """The shard directory a ``manifest.json`` output describes (what the CLI takes as --out)."""
    return os.path.dirname(manifest)


def genome_manifest(genome):
    return f"results/ingest/genomes/{genome}/manifest.json"


def task_manifests(task):
    """Shard manifests of one task's ``train`` and ``test`` parts, split at ingestion (tables
    stratified by label, annotations by position, variants by position bin), so every model
    and baseline is fit on the same training part and scored on the same test part.
    """
    return {
        split: f"results/ingest/tasks/{task}/{split}/manifest.json"
        for split in ("train", "test")
    }


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


def needs_pretraining():
    """Pretraining runs when fine-tuning starts from it or a variant task is scored by it
    zero-shot (variant tasks are also fine-tuned, with a paired ref/alt head)."""
    return bool(tasks_of_type("variant_effect")) or (
        len(TASKS.index) > 0 and not config["finetune"]["pretrained"]
    )


HELD_OUT = config["pretrain"]["held_out_genomes"]
for genome in HELD_OUT:
    if genome not in GENOMES.index:
        raise WorkflowError(
            f"config: pretrain.held_out_genomes: '{genome}' is not a genome of "
            f"{config['genomes']} ({', '.join(GENOMES.index)})"
        )
TRAINING_GENOMES = [genome for genome in GENOMES.index if genome not in HELD_OUT]
if not TRAINING_GENOMES and needs_pretraining():
    raise WorkflowError(
        "config: pretrain.held_out_genomes holds every genome of "
        f"{config['genomes']}: none is left to pretrain on"
    )

# --- settings the schema cannot check: validated by the package itself, before any job ----


def checked(check, *args):
    """Run one of the package's checks; its ConfigurationError becomes a WorkflowError."""
    from hyena_glt.errors import ConfigurationError

    try:
        return check(*args)
    except ConfigurationError as error:
        raise WorkflowError(str(error))


def check_model_settings():
    """pretrain.model, finetune.overrides and each by_task_type's overrides as HyenaGLTConfig
    sees them (unknown fields, 1e-3 read as a number, batch_size >= 1), and the curriculum
    against the model's sequence_length and the ingested windows."""
    from hyena_glt.config import HyenaGLTConfig, check_config_fields

    model = checked(
        check_config_fields, config["pretrain"]["model"], "config: pretrain.model"
    )
    finetune = config["finetune"]
    base = model.to_dict()  # the overrides change the model they start from
    if finetune["pretrained"]:
        saved = os.path.join(finetune["pretrained"], "config.json")
        base = (
            checked(HyenaGLTConfig.from_pretrained, saved).to_dict()
            if os.path.isfile(saved)
            else {}  # a registered name: its fields are checked when the job loads it
        )
    overrides = finetune.get("overrides", {})
    checked(check_config_fields, overrides, "config: finetune.overrides", base)
    for kind, special in finetune.get("by_task_type", {}).items():
        merged = {**overrides, **special.get("overrides", {})}
        where = f"config: finetune.by_task_type.{kind}.overrides"
        checked(check_config_fields, merged, where, base)
    stages = config["pretrain"]["curriculum"]
    longest = max(
        (int(stage.split(":")[0]) for stage in (stages or "").split(",") if stage),
        default=0,
    )
    window = config["ingest"]["genomes"]["window"]
    for limit, name in (
        (model.sequence_length, "pretrain.model.sequence_length"),
        (window, "ingest.genomes.window"),
    ):
        if longest > limit:
            raise WorkflowError(
                f"config: pretrain.curriculum '{stages}': stage length {longest} exceeds "
                f"{name}={limit} (windows are cropped, never padded, to a stage); shorten "
                f"the stage or raise {name}"
            )


def table_header(path):
    """Column names of a CSV/TSV (gzip allowed), read from its first line only."""
    separator = "\t" if re.search(r"\.(tsv|tab|txt)(\.gz)?$", path) else ","
    try:
        return list(pd.read_csv(path, sep=separator, nrows=0).columns)
    except (OSError, ValueError, EOFError) as error:
        raise WorkflowError(f"{path}: cannot read its header line ({error})")


def check_sheet_columns():
    """The column names the task sheet gives for each table exist in that table's header."""
    for task, row in TASKS.iterrows():
        if row["type"] in ("sequence_classification", "regression"):
            wanted = {"table": ["sequence_column", "label_column"]}
        elif row["type"] == "variant_effect":
            variant = ["pos_column", "ref_column", "alt_column"]
            variant += [] if isinstance(row.get("chrom"), str) else ["chrom_column"]
            wanted = {
                "table": variant + ["label_column"],
                "labels": variant + ["label_column"],
            }
        else:
            continue
        for file_column, settings in wanted.items():
            path = row.get(file_column)
            if not isinstance(path, str):
                continue
            header = table_header(path)
            for setting in settings:
                column = row.get(setting)
                column = (
                    column
                    if isinstance(column, str)
                    else setting.removesuffix("_column")
                )
                if column not in header:
                    raise WorkflowError(
                        f"{config['tasks']} (task '{task}'): {setting} '{column}' is not a "
                        f"column of {path} (its columns: {', '.join(header)}); set "
                        f"{setting} in the sheet to one of them"
                    )


check_model_settings()
check_sheet_columns()

#: The workflow's own pretrained model (the causal LM every fine-tuning starts from unless
#: finetune.pretrained names another, and the zero-shot variant scorer).
PRETRAINED = "results/models/pretrained"

#: Compression method -> name of its model directory under results/models/compressed/{task}/.
COMPRESSED_NAMES = {
    "quantize": "quantized",
    "prune": "pruned",
    "distill": "distilled",
    "export": "onnx",
}


def genome_shards(genomes):
    return [shard_dir(genome_manifest(genome)) for genome in genomes]


def input_files():
    """Every input file named by the sheets (their checksums go into the report)."""
    files = list(GENOMES["fasta"])
    for column in FILE_COLUMNS:
        if column in TASKS:
            files += [path for path in TASKS[column].tolist() if isinstance(path, str)]
    return list(dict.fromkeys(files))


def finetune_start(wildcards):
    """Input function: the workflow's pretrained model, unless the config names another."""
    return [] if config["finetune"]["pretrained"] else [PRETRAINED]


def finetuned_model(task):
    return f"results/models/finetuned/{task}"


def compressed_models(task):
    """Compressed model directories of a task, by method name (sequence classification only)."""
    if TASKS.loc[task, "type"] != "sequence_classification":
        return {}
    return {
        COMPRESSED_NAMES[
            method
        ]: f"results/models/compressed/{task}/{COMPRESSED_NAMES[method]}"
        for method in config["compress"]["methods"]
    }


def stage_resources(stage):
    """The resources of a stage's jobs from the config (threads are set separately)."""
    settings = config[stage]["resources"]
    return {
        key: value
        for key, value in settings.items()
        if key != "threads" and not (key == "gpu" and value == 0)
    }


def launcher(stage):
    """How a training stage runs `hyena-glt`: directly, or under torchrun with one process per
    GPU when the stage asks for more than one (DDP on one node)."""
    gpus = config[stage]["resources"].get("gpu", 0)
    if gpus > 1:
        return f"torchrun --standalone --nproc-per-node {gpus} -m hyena_glt"
    return "hyena-glt"


def finetune_setting(wildcards, key):
    """`finetune.<key>` for this task: its type's `finetune.by_task_type` entry first (the
    overrides of both merged)."""
    kind = TASKS.loc[wildcards.task, "type"]
    special = config["finetune"].get("by_task_type", {}).get(kind, {})
    if key == "overrides":
        return {
            **config["finetune"].get("overrides", {}),
            **special.get("overrides", {}),
        }
    return special.get(key, config["finetune"].get(key))


def quoted(arguments):
    return " ".join(shlex.quote(str(argument)) for argument in arguments)


def evaluation_table(task):
    return f"results/evaluate/{task}/results.parquet"


def ingest_outputs():
    genomes = [genome_manifest(genome) for genome in GENOMES.index]
    tasks = [path for task in TASKS.index for path in task_manifests(task).values()]
    return genomes + tasks


# --- input and params functions of the later stages ----------------------------------------


def compress_inputs(wildcards):
    return {
        "model": finetuned_model(wildcards.task),
        "train": task_manifests(wildcards.task)["train"],
        "test": task_manifests(wildcards.task)["test"],
    }


def benchmark_inputs(wildcards):
    return {
        "train": task_manifests(wildcards.task)["train"],
        "test": task_manifests(wildcards.task)["test"],
        "finetuned": finetuned_model(wildcards.task),
        **compressed_models(wildcards.task),
    }


def model_arguments(wildcards, input):
    """Params function: `--model NAME=DIR` of the fine-tuned and every compressed model."""
    names = ["finetuned", *compressed_models(wildcards.task)]
    return quoted(f"--model={name}={input[name]}" for name in names)


def task_baselines(wildcards):
    """Params function: `--baselines` of a task, from evaluate.baselines of its type (a type
    left out: `all`, every baseline that applies)."""
    kind = TASKS.loc[wildcards.task, "type"]
    chosen = config["evaluate"].get("baselines", {}).get(kind, ["all"])
    return ",".join(chosen) or "none"


def variant_max_length(wildcards):
    """`--max-length` of a variant task's paired head, in fine-tuning and evaluation alike."""
    window = config["finetune"].get("variant_window")
    if TASKS.loc[wildcards.task, "type"] == "variant_effect" and window:
        return f"--max-length {window}"
    return ""


def evaluated_models(wildcards):
    """Models evaluated on a task's test part, by name. The fine-tuned model always; for
    variant tasks also the pretrained LM (zero-shot Δ log-likelihood)."""
    models = {"finetuned": finetuned_model(wildcards.task)}
    if TASKS.loc[wildcards.task, "type"] == "variant_effect":
        models["zero_shot_lm"] = PRETRAINED
    return models


def report_inputs(wildcards):
    """Every task's results and per-example predictions, and the training logs
    (compressed models are timed and scored in the benchmark job of their task); the
    predict sheet's output folders and the annotations its tracks are drawn against."""
    tasks = list(TASKS.index)
    return {
        "results": [evaluation_table(task) for task in tasks],
        "predictions": [
            f"results/evaluate/{task}/predictions.parquet" for task in tasks
        ],
        "models": [finetuned_model(task) for task in tasks]
        + ([PRETRAINED] if needs_pretraining() else []),
        "config": EFFECTIVE_CONFIG,
        "prediction_outputs": prediction_outputs(),
        "annotations": [
            row["annotation"] for row in sheet_rows(PREDICTIONS) if "annotation" in row
        ],
    }


def repeated(option, paths):
    return quoted(f"{option}={path}" for path in paths)


REPORT = "results/report/hyena_glt_report.html"
EFFECTIVE_CONFIG = "results/config.effective.yaml"


def sheet_rows(sheet):
    """A sheet's rows as dicts of their filled-in cells."""
    return [
        {column: value for column, value in row.items() if not pd.isna(value)}
        for row in sheet.to_dict("records")
    ]


def effective_config_text():
    """What this run uses, as YAML: the config after the --configfile merges, --config
    overrides and schema defaults, the files it came from and the sheets' rows (each task's
    split included)."""
    sheets = {"genomes": sheet_rows(GENOMES), "tasks": sheet_rows(TASKS)}
    if len(PREDICTIONS):
        sheets["predict"] = sheet_rows(PREDICTIONS)
    sources = [os.path.abspath(path) for path in workflow.configfiles]
    header = (
        "# The configuration this Hyena-GLT run uses (written at its start): config/config.yaml"
        "\n# of the run's folder, --configfile files merged over it, --config overrides and"
        "\n# the schema's defaults; the sheets as read.\n"
    )
    return header + yaml.safe_dump(
        {"sources": sources, "config": config, "sheets": sheets},
        sort_keys=False,
        default_flow_style=False,
    )


def prediction_outputs():
    """Output folders of the predict sheet's rows."""
    return [f"results/predictions/{name}" for name in PREDICTIONS.index]


def final_outputs():
    """What `snakemake` builds by default: the report, and through it every stage, and the
    predict sheet's outputs."""
    return [REPORT, *prediction_outputs()]
