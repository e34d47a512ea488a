# Pretraining: one causal LM on the windows of every training genome, through a
# sequence-length curriculum. The model directory appears only when training is complete;
# checkpoints live beside it in pretrained.run/, so a preempted or killed job resumes when it
# runs again (hyena-glt exits 75 after saving a checkpoint on SIGTERM/SIGUSR1, and
# `--retries`/`restart-times` resubmits it).


rule pretrain:
    input:
        train=[genome_manifest(genome) for genome in TRAINING_GENOMES],
        held_out=[genome_manifest(genome) for genome in HELD_OUT],
    output:
        directory(PRETRAINED),
    log:
        "logs/pretrain.log",
    benchmark:
        "results/benchmarks/pretrain.tsv"
    conda:
        "../envs/hyena-glt.yaml"
    threads: config["pretrain"]["resources"]["threads"]
    resources:
        **stage_resources("pretrain"),
    params:
        launcher=launcher("pretrain"),
        train=quoted(genome_shards(TRAINING_GENOMES)),
        held_out=(f"--val-data {quoted(genome_shards(HELD_OUT))}" if HELD_OUT else ""),
        settings=quoted(
            f"--set={field}={value}"
            for field, value in {
                "seed": config["seed"],
                **config["pretrain"]["model"],
            }.items()
        ),
        curriculum=(
            f"--curriculum {config['pretrain']['curriculum']}"
            if config["pretrain"]["curriculum"]
            else ""
        ),
        max_steps=(
            f"--max-steps {config['pretrain']['max_steps']}"
            if config["pretrain"]["max_steps"]
            else ""
        ),
        register=(
            f"--register {shlex.quote(config['pretrain']['register_as'])}"
            if config["pretrain"]["register_as"]
            else ""
        ),
    shell:
        "{params.launcher} pretrain --data {params.train} {params.held_out}"
        " {params.settings} {params.curriculum} {params.max_steps} {params.register}"
        " --out {output:q} --threads {threads} > {log} 2>&1"
