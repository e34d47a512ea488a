# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv when it is missing and install the package with its dependencies.
#
# PyTorch: when .venv has no torch yet, we install $(TORCH). The default pins the
# release that this project is tested with; on Linux, PyPI serves it with CUDA, and on
# machines with a local CPU wheel (find-links) pip takes that. To choose a build:
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu124"
# or install torch into .venv yourself first: it is then left alone.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
CORES  ?= 2
BIN    := $(VENV)/bin

.PHONY: demo test lint install-slurm-profile clean

$(BIN)/hyena-glt: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/hyena-glt
	$(BIN)/snakemake --cores $(CORES)
	@echo "Outputs: $$(pwd)/results (shard manifests: results/ingest/*/*/manifest.json)"

test: $(BIN)/hyena-glt
	$(BIN)/python -m pytest

lint: $(BIN)/hyena-glt
	$(BIN)/ruff check hyena_glt tests benchmarks
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint --snakefile workflow/Snakefile

clean:
	rm -rf results logs .snakemake
