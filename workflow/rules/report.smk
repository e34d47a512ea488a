# The report: every task's evaluation table, the training curves, the compression reports and
# the provenance of the inputs in one self-contained HTML file (no network needed to view it).
# Compression reports are grouped by task (one Pareto plot each).
# It is also registered with Snakemake's report(), so `snakemake --report report.zip` bundles it.


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
        compression=lambda wildcards, input: repeated(
            "--compression-report",
            [
                f"{model.split('/')[-2]}={model}/compression_report.json"
                for model in input.compressed
            ],
        ),
        data_files=quoted(f"--data-file={path}" for path in input_files()),
        title=config["report"].get("title", "Hyena-GLT benchmark report"),
        config=(
            workflow.configfiles[-1] if workflow.configfiles else "config/config.yaml"
        ),
    shell:
        "hyena-glt report {params.results} {params.predictions} {params.training_logs}"
        " {params.compression} {params.data_files} --config {params.config:q}"
        " --title {params.title:q} --out {output:q} > {log} 2>&1"
