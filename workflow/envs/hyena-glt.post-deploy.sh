#!/usr/bin/env bash
# Runs inside the new conda environment (snakemake --use-conda), in the directory snakemake runs
# in, which must be the repository root: installs the hyena-glt package from it, without touching
# the dependencies conda already installed.
set -euo pipefail
if ! grep -q '^name = "hyena-glt"' pyproject.toml 2>/dev/null; then
    echo "hyena-glt post-deploy: run snakemake --use-conda from the repository root ($PWD is not)" >&2
    exit 1
fi
python -m pip install --no-deps --no-build-isolation -e .
