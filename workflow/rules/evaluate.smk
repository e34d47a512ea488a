# Evaluation: every model of a task scored on the task's test part beside the baselines of its
# type (evaluate.baselines), fit on the same train part: one tidy table (model, dataset, metric,
# value) and one per-example predictions table per task, from which the report computes
# bootstrap intervals and verdicts. Sequence classifiers are also timed, all models of a task in
# one job, interleaved (compressed ones and the ONNX export included); token classifiers are
# scored per base; variants by the fine-tuned paired head and zero-shot by the pretrained LM.
# CPU-only jobs.

EVALUATE = config["evaluate"]


rule benchmark:
    input:
        unpack(benchmark_inputs),
    output:
        results="results/evaluate/{task}/results.parquet",
        predictions="results/evaluate/{task}/predictions.parquet",
    log:
        "logs/evaluate/{task}.log",
    benchmark:
        "results/benchmarks/evaluate/{task}.tsv"
    wildcard_constraints:
        task=names_regex(tasks_of_type("sequence_classification")),
    conda:
        "../envs/hyena-glt.yaml"
    threads: EVALUATE["resources"]["threads"]
    resources:
        **stage_resources("evaluate"),
    params:
        out=lambda wildcards, output: os.path.dirname(output.results),
        train=lambda wildcards, input: shard_dir(input.train),
        test=lambda wildcards, input: shard_dir(input.test),
        models=model_arguments,
        baselines=task_baselines,
        cnn_epochs=EVALUATE.get("cnn_epochs", 5),
        seed=config["seed"],
    shell:
        "hyena-glt benchmark --name {wildcards.task} --train {params.train:q}"
        " --test {params.test:q} {params.models} --baselines {params.baselines}"
        " --cnn-epochs {params.cnn_epochs} --seed {params.seed} --threads {threads}"
        " --out {params.out:q} > {log} 2>&1"


rule evaluate:
    input:
        unpack(evaluated_models),
        train=lambda wildcards: task_manifests(wildcards.task)["train"],
        test=lambda wildcards: task_manifests(wildcards.task)["test"],
    output:
        results="results/evaluate/{task}/results.parquet",
        predictions="results/evaluate/{task}/predictions.parquet",
    log:
        "logs/evaluate/{task}.log",
    benchmark:
        "results/benchmarks/evaluate/{task}.tsv"
    wildcard_constraints:
        task=names_regex(
            tasks_of_type("token_classification", "regression", "variant_effect")
        ),
    conda:
        "../envs/hyena-glt.yaml"
    threads: EVALUATE["resources"]["threads"]
    resources:
        **stage_resources("evaluate"),
    params:
        train=lambda wildcards, input: shard_dir(input.train),
        test=lambda wildcards, input: shard_dir(input.test),
        models=lambda wildcards, input: quoted(
            f"--model={name}={input[name]}" for name in evaluated_models(wildcards)
        ),
        max_length=variant_max_length,
        # Variant shards written on both strands: the zero-shot score averages them.
        strand_average=lambda wildcards: (
            "--strand-average"
            if TASKS.loc[wildcards.task, "type"] == "variant_effect"
            and config["ingest"]["variants"].get("reverse_complement", True)
            else ""
        ),
        baselines=task_baselines,
        cnn_epochs=EVALUATE.get("cnn_epochs", 5),
        seed=config["seed"],
    shell:
        "hyena-glt evaluate {params.models} --data {params.test:q} {params.max_length}"
        " {params.strand_average}"
        " --train {params.train:q} --baselines {params.baselines}"
        " --cnn-epochs {params.cnn_epochs} --seed {params.seed}"
        " --dataset {wildcards.task} --threads {threads} --out {output.results:q}"
        " --predictions-out {output.predictions:q} > {log} 2>&1"
