# Prediction: models applied to the user's own files, one row of the predict sheet each
# (config/predict.tsv): per-base tracks of a genome (bedGraph + BED), an annotated VCF, per-
# sequence predictions or embeddings, written by `hyena-glt predict` into
# results/predictions/{name}/ (with summary.json). A model is a task's fine-tuned model, the
# workflow's pretrained LM, a model directory or a registered name.

#: Task sheet types whose fine-tuned model writes each kind of output.
KIND_TASK_TYPES = {
    "tracks": ("token_classification",),
    "variants": ("variant_effect",),
    "predictions": ("sequence_classification", "regression"),
    "embeddings": ("sequence_classification", "regression", "token_classification"),
}

# Each row's model, inputs and options, checked while the workflow is parsed: a missing input
# or a task model of the wrong type for the row's kind stops snakemake before any job.
PREDICT_JOBS = {}
for name, row in PREDICTIONS.iterrows():
    where = f"{config['predict']}, row '{name}'"
    if not os.path.exists(row["input"]):
        raise WorkflowError(f"{where}: column 'input': file not found: {row['input']}")
    task = row["model"] if row["model"] in TASKS.index else None
    kinds = KIND_TASK_TYPES[row["kind"]]
    if task and TASKS.loc[task, "type"] not in kinds:
        raise WorkflowError(
            f"{where}: task '{task}' is a {TASKS.loc[task, 'type']} task; kind "
            f"'{row['kind']}' needs a {' or '.join(kinds)} model"
        )
    model = finetuned_model(task) if task else row["model"]
    model = PRETRAINED if model == "pretrained" else model
    inputs = {"data": row["input"]}
    if task or model == PRETRAINED or os.path.isdir(model):  # built here, or on disk
        inputs["model"] = model
    options = []
    if isinstance(row.get("reference"), str):
        inputs["reference"] = row["reference"]
        options.append(f"--reference={row['reference']}")
    window = row.get("window")
    if not isinstance(window, str) and task in tasks_of_type("variant_effect"):
        # a variant task's model reads the windows it was fine-tuned on
        window = config["finetune"].get("variant_window")
    options += [f"--window={window}"] if window else []
    options += ["--embeddings"] if row["kind"] == "embeddings" else []
    PREDICT_JOBS[name] = {"model": model, "inputs": inputs, "options": quoted(options)}


rule predict:
    input:
        unpack(lambda wildcards: PREDICT_JOBS[wildcards.name]["inputs"]),
    output:
        directory("results/predictions/{name}"),
    log:
        "logs/predict/{name}.log",
    benchmark:
        "results/benchmarks/predict/{name}.tsv"
    wildcard_constraints:
        name=names_regex(PREDICTIONS.index),
    conda:
        "../envs/hyena-glt.yaml"
    # Inference only: the evaluation stage's CPU resources fit (one batch of windows in memory).
    threads: config["evaluate"]["resources"]["threads"]
    resources:
        **stage_resources("evaluate"),
    params:
        model=lambda wildcards: PREDICT_JOBS[wildcards.name]["model"],
        options=lambda wildcards: PREDICT_JOBS[wildcards.name]["options"],
    shell:
        "hyena-glt predict {params.model:q} {input.data:q} --out {output:q}"
        " {params.options} --threads {threads} > {log} 2>&1"
