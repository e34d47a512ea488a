# Compression of each fine-tuned sequence classifier: int8 quantization, pruning, distillation
# into a smaller student and ONNX export. Each writes a model directory holding
# compression_report.json (parameters, size on disk, CPU latency/throughput and accuracy before
# and after on the task's test part), which the report's Pareto plot reads. CPU-only jobs:
# the latencies they measure are CPU latencies.


SEQUENCE_TASKS = names_regex(tasks_of_type("sequence_classification"))
COMPRESS = config["compress"]


rule quantize:
    input:
        unpack(compress_inputs),
    output:
        directory("results/models/compressed/{task}/quantized"),
    log:
        "logs/compress/{task}/quantize.log",
    benchmark:
        "results/benchmarks/compress/{task}/quantize.tsv"
    wildcard_constraints:
        task=SEQUENCE_TASKS,
    conda:
        "../envs/hyena-glt.yaml"
    threads: COMPRESS["resources"]["threads"]
    resources:
        **stage_resources("compress"),
    params:
        test=lambda wildcards, input: shard_dir(input.test),
        type=COMPRESS.get("quantize", {}).get("type", "dynamic"),
    shell:
        "hyena-glt quantize {input.model:q} --val {params.test:q} --type {params.type}"
        " --out {output:q} --threads {threads} > {log} 2>&1"


rule prune:
    input:
        unpack(compress_inputs),
    output:
        directory("results/models/compressed/{task}/pruned"),
    log:
        "logs/compress/{task}/prune.log",
    benchmark:
        "results/benchmarks/compress/{task}/prune.tsv"
    wildcard_constraints:
        task=SEQUENCE_TASKS,
    conda:
        "../envs/hyena-glt.yaml"
    threads: COMPRESS["resources"]["threads"]
    resources:
        **stage_resources("compress"),
    params:
        train=lambda wildcards, input: shard_dir(input.train),
        test=lambda wildcards, input: shard_dir(input.test),
        sparsity=COMPRESS.get("prune", {}).get("sparsity", 0.5),
        type=COMPRESS.get("prune", {}).get("type", "magnitude"),
        fine_tune_steps=COMPRESS.get("prune", {}).get("fine_tune_steps", 0),
    shell:
        "hyena-glt prune {input.model:q} --train {params.train:q} --val {params.test:q}"
        " --type {params.type} --sparsity {params.sparsity}"
        " --fine-tune-steps {params.fine_tune_steps} --out {output:q} --threads {threads} > {log} 2>&1"


rule distill:
    input:
        unpack(compress_inputs),
    output:
        directory("results/models/compressed/{task}/distilled"),
    log:
        "logs/compress/{task}/distill.log",
    benchmark:
        "results/benchmarks/compress/{task}/distill.tsv"
    wildcard_constraints:
        task=SEQUENCE_TASKS,
    conda:
        "../envs/hyena-glt.yaml"
    threads: COMPRESS["resources"]["threads"]
    resources:
        **stage_resources("compress"),
    params:
        train=lambda wildcards, input: shard_dir(input.train),
        test=lambda wildcards, input: shard_dir(input.test),
        steps=COMPRESS.get("distill", {}).get("steps", 500),
        student=quoted(
            f"--student-{option}={value}"
            for option, value in (
                ("d-model", COMPRESS.get("distill", {}).get("student_d_model")),
                ("layers", COMPRESS.get("distill", {}).get("student_layers")),
            )
            if value is not None
        ),
    shell:
        "hyena-glt distill {input.model:q} --train {params.train:q} --val {params.test:q}"
        " --steps {params.steps} {params.student} --out {output:q} --threads {threads} > {log} 2>&1"


rule export:
    input:
        unpack(compress_inputs),
    output:
        directory("results/models/compressed/{task}/onnx"),
    log:
        "logs/compress/{task}/export.log",
    benchmark:
        "results/benchmarks/compress/{task}/export.tsv"
    wildcard_constraints:
        task=SEQUENCE_TASKS,
    conda:
        "../envs/hyena-glt.yaml"
    threads: COMPRESS["resources"]["threads"]
    resources:
        **stage_resources("compress"),
    params:
        test=lambda wildcards, input: shard_dir(input.test),
    shell:
        "hyena-glt export {input.model:q} --val {params.test:q} --out {output:q} --threads {threads} > {log} 2>&1"
