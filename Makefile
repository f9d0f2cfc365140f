# The course's two commands: `make lab` opens it, `make test` checks everything.
# Both create .venv on first use and reinstall only when the pins change.
PYTHON ?= python3
# Each module is compiled once, on first import, into .venv (see --no-compile below). Many
# containers set PYTHONDONTWRITEBYTECODE=1; then every process (each notebook's kernel, each
# test worker) compiled torch, pandas, scipy and matplotlib again: 6.5 s of CPU more for their
# import in each process (10.6 against 4.2 s, measured).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SERVER_CONFIG := etc/jupyter/jupyter_server_config.json

.PHONY: lab lab-student test test-kernels notebooks benchmark student site clean

lab: $(INSTALLED)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks

PYTEST := scripts/offline $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15 \
	--nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

test: $(INSTALLED)
	$(PYTEST) tests notebooks

# What depends on a training run, again on other CPU kernels (PyTorch picks them by instruction
# set; ATEN_CPU_CAPABILITY=default|avx2|avx512 chooses among those this CPU has): a result that
# holds only on this machine's kernels is not a finding. CI runs it with the portable default.
CAPABILITY ?= default
TRAINING_TESTS := tests/test_zoo.py tests/test_train.py tests/test_finetune.py \
	tests/test_combine.py tests/test_qat.py tests/test_pruning_schedule.py \
	tests/test_representations.py tests/test_hostile_models.py \
	notebooks/05_finetuning_qat_vs_pruning.ipynb \
	notebooks/06_combining_and_hardware.ipynb
test-kernels: $(INSTALLED)
	ATEN_CPU_CAPABILITY=$(CAPABILITY) $(PYTEST) $(TRAINING_TESTS)

# Re-execute every notebook from its py:percent twin and store the outputs nbval compares.
notebooks: $(INSTALLED)
	scripts/offline scripts/execute_notebooks $(BIN)

benchmark: $(INSTALLED)
	scripts/offline $(BIN)/python scripts/benchmark.py $(ARGS)

# Student edition into student/ (not committed): otter-grader's `otter assign` on each master
# notebook (solutions removed, each check a `grader.check` that runs offline, outputs cleared).
# Binder builds the same in binder/postBuild and opens it.
student: $(INSTALLED)
	$(BIN)/python scripts/build_student_edition.py --output student

# The course as a learner takes it: JupyterLab on the freshly built student edition.
lab-student: student
	$(BIN)/jupyter lab --ServerApp.root_dir=student

# The course site into build/site/ (not committed): Sphinx with myst-nb and sphinx-book-theme,
# configured in book/conf.py, from the committed outputs (nothing re-run), with the network cut.
SPHINX := $(BIN)/python -m sphinx -b html -q -W --keep-going
site: $(INSTALLED)
	scripts/offline $(SPHINX) -d build/site-doctrees book build/site

# --no-compile: Python compiles a module when it is first imported, only the modules used,
# instead of pip compiling all 18,550 installed files first (62 s of CPU, measured).
# The kernel is named after the project; the Jupyter news prompt is switched off (the course
# runs offline and the prompt would cover the first notebook). The server configuration
# (etc/jupyter: serve as root too, list each notebook once by hiding its .py twin) goes into the
# environment, so every server started from .venv uses it.
$(INSTALLED): requirements.txt pyproject.toml $(SERVER_CONFIG)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (pvq)"
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyterlab/apputils-extension:announcements
	mkdir -p $(VENV)/etc/jupyter && cp $(SERVER_CONFIG) $(VENV)/etc/jupyter/
	touch $@

clean:
	rm -rf $(VENV) build student lib/*.egg-info
