# The report: a scorecard (every task's best model against its best baseline, with bootstrap
# intervals and a verdict), per-task figures, one timings table, training curves and the
# provenance (the effective config, versions, input checksums, every job's wall time and peak
# memory) and the predict sheet's outputs (linked; a per-base track drawn against its annotation,
# with its per-base F1) in one self-contained HTML file with plotly.js embedded (no network
# needed to view it).
# It is also registered with Snakemake's report(), so `snakemake --report report.zip` bundles it.

from pathlib import Path


# The effective config is written first (a rule without inputs) and rewritten whenever the
# config or a sheet changes (its text is a parameter; rerun-triggers include params).
rule effective_config:
    output:
        EFFECTIVE_CONFIG,
    log:
        "logs/effective_config.log",
    localrule: True
    params:
        text=lambda wildcards: effective_config_text(),
    run:
        Path(output[0]).write_text(params.text)
        Path(log[0]).write_text(f"wrote {output[0]}\n")


rule report:
    input:
        unpack(report_inputs),
    output:
        report(
            REPORT,
            caption="../report/report.rst",
            category="Benchmark report",
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/hyena-glt.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        results=lambda wildcards, input: repeated("--results", input.results),
        predictions=lambda wildcards, input: repeated(
            "--predictions", input.predictions
        ),
        prediction_outputs=lambda wildcards, input: quoted(
            f"--prediction-output={Path(path).name}={path}"
            for path in input.prediction_outputs
        ),
        annotations=quoted(
            f"--prediction-annotation={row['name']}={row['annotation']}"
            for row in sheet_rows(PREDICTIONS)
            if "annotation" in row
        ),
        training_logs=lambda wildcards, input: repeated(
            "--training-log", [f"{model}/metrics.jsonl" for model in input.models]
        ),
        data_files=lambda wildcards, input: quoted(
            f"--data-file={path}"
            for path in [*input_files(), *input.annotations, input.config]
        ),
        title=config["report"].get("title", "Hyena-GLT benchmark report"),
        resamples=config["report"].get("bootstrap_resamples", 1000),
        seed=config["seed"],
    shell:
        "hyena-glt report {params.results} {params.predictions} {params.training_logs}"
        " {params.prediction_outputs} {params.annotations} {params.data_files}"
        " --config {input.config:q} --job-benchmarks results/benchmarks --resamples {params.resamples}"
        " --seed {params.seed} --title {params.title:q} --out {output:q} > {log} 2>&1"
