# Evaluation: every model of a task scored on the task's test part, as one tidy table
# (model, dataset, metric, value) per task. Sequence classifiers are benchmarked beside the
# baselines, fit on the same train part, with latency, throughput and size measured the same way
# for every model (compressed ones and the ONNX export included); token classifiers are scored
# per base; variants by the fine-tuned paired head and zero-shot by the pretrained LM
# (Δ log-likelihood), side by side.
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
        baselines=",".join(EVALUATE["baselines"]) or "none",
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
        test=lambda wildcards: task_manifests(wildcards.task)["test"],
    output:
        "results/evaluate/{task}/results.parquet",
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
        test=lambda wildcards, input: shard_dir(input.test),
        models=lambda wildcards, input: quoted(
            f"--model={name}={input[name]}" for name in evaluated_models(wildcards)
        ),
        max_length=variant_max_length,
    shell:
        "hyena-glt evaluate {params.models} --data {params.test:q} {params.max_length}"
        " --dataset {wildcards.task} --threads {threads} --out {output:q} > {log} 2>&1"
