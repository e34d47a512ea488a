# Fine-tuning: one model per task, from the workflow's pretrained model (or the model the
# config names), trained on the task's train/ part and scored once on its test/ part
# (test_metrics.json). Checkpoints live in {task}.run/ beside the model, so a rerun resumes.

#: hyena-glt finetune --task-type, by task sheet type (variant_effect: a head on ref/alt pairs).
FINETUNE_TASK_TYPES = {
    "sequence_classification": "sequence_classification",
    "regression": "regression",
    "token_classification": "token_classification",
    "variant_effect": "variant_effect",
}


rule finetune:
    input:
        pretrained=finetune_start,
        train=lambda wildcards: task_manifests(wildcards.task)["train"],
        test=lambda wildcards: task_manifests(wildcards.task)["test"],
    output:
        directory("results/models/finetuned/{task}"),
    log:
        "logs/finetune/{task}.log",
    benchmark:
        "results/benchmarks/finetune/{task}.tsv"
    wildcard_constraints:
        task=names_regex(TASKS.index),
    conda:
        "../envs/hyena-glt.yaml"
    threads: config["finetune"]["resources"]["threads"]
    resources:
        **stage_resources("finetune"),
    params:
        launcher=launcher("finetune"),
        pretrained=config["finetune"]["pretrained"] or PRETRAINED,
        train=lambda wildcards, input: shard_dir(input.train),
        test=lambda wildcards, input: shard_dir(input.test),
        task_type=lambda wildcards: FINETUNE_TASK_TYPES[
            TASKS.loc[wildcards.task, "type"]
        ],
        strategy=lambda wildcards: finetune_setting(wildcards, "strategy"),
        head_lr=lambda wildcards: (
            f"--head-lr {finetune_setting(wildcards, 'head_lr')}"
            if finetune_setting(wildcards, "head_lr")
            else ""
        ),
        epochs=lambda wildcards: finetune_setting(wildcards, "epochs"),
        settings=lambda wildcards: quoted(
            f"--set={field}={value}"
            for field, value in finetune_setting(wildcards, "overrides").items()
        ),
        max_length=variant_max_length,
        max_steps=(
            f"--max-steps {config['finetune']['max_steps']}"
            if config["finetune"]["max_steps"]
            else ""
        ),
        auto="--auto" if config["finetune"].get("auto") else "",
    shell:
        "{params.launcher} finetune --pretrained {params.pretrained:q}"
        " --train {params.train:q} --test {params.test:q} --task-type {params.task_type}"
        " --strategy {params.strategy} --epochs {params.epochs} {params.head_lr}"
        " {params.settings}"
        " {params.max_steps} {params.max_length} {params.auto} --out {output:q}"
        " --threads {threads}"
        " > {log} 2>&1"
