# The report: a scorecard (every task's best model against its best baseline, with bootstrap
# intervals and a verdict), per-task figures, one timings table, training curves and the
# provenance (the effective config, versions, input checksums, every job's wall time and peak
# memory) in one self-contained HTML file with plotly.js embedded (no network needed to view it).
# It is also registered with Snakemake's report(), so `snakemake --report report.zip` bundles it.

import json


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
        training_logs=lambda wildcards, input: repeated(
            "--training-log", [f"{model}/metrics.jsonl" for model in input.models]
        ),
        data_files=quoted(f"--data-file={path}" for path in input_files()),
        title=config["report"].get("title", "Hyena-GLT benchmark report"),
        resamples=config["report"].get("bootstrap_resamples", 1000),
        seed=config["seed"],
        # the merged config this run uses (config files, --config overrides, defaults)
        config=json.dumps(config, sort_keys=True, default=str),
    shell:
        "hyena-glt report {params.results} {params.predictions} {params.training_logs}"
        " {params.data_files} --config-json {params.config:q}"
        " --job-benchmarks results/benchmarks --resamples {params.resamples}"
        " --seed {params.seed} --title {params.title:q} --out {output:q} > {log} 2>&1"
