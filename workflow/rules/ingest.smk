# Ingestion: every input file becomes a directory of Parquet shards plus manifest.json; each
# task's examples are split here, once, into train/ and test/ parts that every later stage shares.
# The manifest is the declared output: the CLI writes the whole directory under a temporary
# name and renames it into place, so the manifest appears only when every shard is complete.
# Ingestion streams its input on one CPU core; no rule here needs a GPU.


rule ingest_genome:
    input:
        fasta=sheet_value(GENOMES, "genome", "fasta"),
    output:
        "results/ingest/genomes/{genome}/manifest.json",
    log:
        "logs/ingest/genomes/{genome}.log",
    benchmark:
        "results/benchmarks/ingest/genomes/{genome}.tsv"
    conda:
        "../envs/hyena-glt.yaml"
    # One streaming pass over the FASTA on one core; the writer holds one row group (16,384
    # windows). Peak RSS on the example was ~0.4 GB, most of it the Python runtime.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        out=lambda wildcards, output: shard_dir(output[0]),
        alphabet=sheet_value(GENOMES, "genome", "alphabet"),
        window=config["ingest"]["genomes"]["window"],
        stride=config["ingest"]["genomes"]["stride"],
        max_n_fraction=config["ingest"]["genomes"]["max_n_fraction"],
        reverse_complement=(
            "--reverse-complement"
            if config["ingest"]["genomes"]["reverse_complement"]
            else ""
        ),
    shell:
        "hyena-glt ingest fasta {input.fasta:q} --out {params.out:q}"
        " --alphabet {params.alphabet} --window {params.window} --stride {params.stride}"
        " --max-n-fraction {params.max_n_fraction} {params.reverse_complement}"
        " > {log} 2>&1"


rule ingest_sequence_task:
    input:
        table=sheet_value(TASKS, "task", "table"),
    output:
        train="results/ingest/tasks/{task}/train/manifest.json",
        test="results/ingest/tasks/{task}/test/manifest.json",
    log:
        "logs/ingest/tasks/{task}.log",
    benchmark:
        "results/benchmarks/ingest/tasks/{task}.tsv"
    wildcard_constraints:
        task=names_regex(tasks_of_type("sequence_classification", "regression")),
    conda:
        "../envs/hyena-glt.yaml"
    # The table is read whole to split it (~0.4 GB peak RSS for the 2,000-row example); raise
    # mem_mb with --set-resources for tables of millions of rows.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        out=lambda wildcards, output: os.path.dirname(shard_dir(output.train)),
        alphabet=sheet_value(TASKS, "task", "alphabet"),
        sequence_column=sheet_value(TASKS, "task", "sequence_column"),
        label_column=sheet_value(TASKS, "task", "label_column"),
        objective=sheet_value(TASKS, "task", "objective"),
        split=split_arguments,
    shell:
        "hyena-glt ingest table {input.table:q} --out {params.out:q}"
        " --alphabet {params.alphabet} --task {params.objective}"
        " --sequence-column {params.sequence_column:q} --label-column {params.label_column:q}"
        " {params.split} > {log} 2>&1"


rule ingest_annotation_task:
    input:
        unpack(annotation_inputs),
    output:
        train="results/ingest/tasks/{task}/train/manifest.json",
        test="results/ingest/tasks/{task}/test/manifest.json",
    log:
        "logs/ingest/tasks/{task}.log",
    benchmark:
        "results/benchmarks/ingest/tasks/{task}.tsv"
    wildcard_constraints:
        task=names_regex(tasks_of_type("token_classification")),
    conda:
        "../envs/hyena-glt.yaml"
    # One record at a time: memory holds a record's sequence and its per-base label mask, plus
    # the training part's 31-mers (8 bytes per base) for dropping repeated held-out windows.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        out=lambda wildcards, output: os.path.dirname(shard_dir(output.train)),
        feature=task_setting("feature", config["ingest"]["annotation"]["feature"]),
        window=config["ingest"]["annotation"]["window"],
        stride=config["ingest"]["annotation"]["stride"],
        split=split_arguments,
        duplicates=duplicates_flag,
        fasta=lambda wildcards, input: shlex.quote(input.get("fasta", "")),
    shell:
        "hyena-glt ingest annotation {params.fasta} --annotation {input.annotation:q}"
        " --out {params.out:q} --feature {params.feature:q}"
        " --window {params.window} --stride {params.stride}"
        " {params.split} {params.duplicates} > {log} 2>&1"


rule ingest_variant_task:
    input:
        unpack(variant_inputs),
    output:
        train="results/ingest/tasks/{task}/train/manifest.json",
        test="results/ingest/tasks/{task}/test/manifest.json",
    log:
        "logs/ingest/tasks/{task}.log",
    benchmark:
        "results/benchmarks/ingest/tasks/{task}.tsv"
    wildcard_constraints:
        task=names_regex(tasks_of_type("variant_effect")),
    conda:
        "../envs/hyena-glt.yaml"
    # Streams the variants; the reference FASTA is read through its index, not loaded whole.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        out=lambda wildcards, output: os.path.dirname(shard_dir(output.train)),
        source=variant_source_arguments,
        window=config["ingest"]["variants"]["window"],
        on_ref_mismatch=config["ingest"]["variants"]["on_ref_mismatch"],
        split=split_arguments,
        reverse_complement=(
            "--reverse-complement"
            if config["ingest"]["variants"].get("reverse_complement", True)
            else ""
        ),
    shell:
        "hyena-glt ingest vcf --reference {input.reference:q} {params.source}"
        " --out {params.out:q} --window {params.window}"
        " --on-ref-mismatch {params.on_ref_mismatch} {params.split}"
        " {params.reverse_complement} > {log} 2>&1"


# `snakemake ingest`: every shard directory and nothing after (e.g. to inspect the shards).
rule ingest:
    input:
        ingest_outputs(),
    localrule: True
