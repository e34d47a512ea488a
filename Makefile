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

.PHONY: demo test test-slurm lint install-slurm-profile clean

$(BIN)/hyena-glt: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# The workflow's jobs call `hyena-glt`: put the virtualenv first on their PATH.
RUN := PATH="$(abspath $(BIN)):$$PATH"

demo: $(BIN)/hyena-glt
	$(RUN) $(BIN)/snakemake --cores $(CORES)

# `snakemake --profile slurm` looks for a profile named slurm in ./slurm,
# ~/.config/snakemake/slurm and /etc/xdg/snakemake/slurm. This copies profiles/slurm to the
# second, filling in the partition and account when given:
#   make install-slurm-profile PARTITION=gpu ACCOUNT=mylab
PROFILE_DIR ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake/slurm
install-slurm-profile:
	@test ! -e $(PROFILE_DIR)/config.yaml || test -n "$(FORCE)" || \
		{ echo "$(PROFILE_DIR)/config.yaml exists; add FORCE=1 to replace it"; exit 1; }
	mkdir -p $(PROFILE_DIR)
	sed $(if $(PARTITION),-e 's|^  # slurm_partition: "YOUR_PARTITION"|  slurm_partition: "$(PARTITION)"|') \
	    $(if $(ACCOUNT),-e 's|^  # slurm_account: "YOUR_ACCOUNT"|  slurm_account: "$(ACCOUNT)"|') \
	    profiles/slurm/config.yaml > $(PROFILE_DIR)/config.yaml
	@echo "Installed $(PROFILE_DIR)/config.yaml: run \`snakemake --profile slurm\` in $$(pwd)"

test: $(BIN)/hyena-glt
	$(RUN) $(BIN)/python -m pytest

# The workflow through a real single-node SLURM cluster on this machine (root, Debian/Ubuntu:
# installs slurm-wlm and munge, starts the daemons, stops them afterwards). CI runs it.
test-slurm: $(BIN)/hyena-glt
	.ci/slurm/start-cluster.sh
	$(RUN) HYENA_GLT_SLURM_TEST=1 $(BIN)/python -m pytest tests/test_workflow_slurm.py; \
	  status=$$?; .ci/slurm/stop-cluster.sh; exit $$status

lint: $(BIN)/hyena-glt
	$(BIN)/ruff check hyena_glt tests benchmarks
	$(BIN)/snakefmt --check workflow
	$(BIN)/snakemake --lint --snakefile workflow/Snakefile

clean:
	rm -rf results logs .snakemake
