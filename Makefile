# `make serve` runs the gateway on the embedded default; `make test` runs every check;
# `make lock` pins the image's dependencies after a change to pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCKS := requirements.lock requirements-build.lock
# The Dockerfile's install steps are tested offline (tests/test_image.py) from these wheels.
WHEELHOUSE := $(VENV)/wheelhouse
COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock'

.PHONY: serve test lint bench lock clean

$(STAMP): pyproject.toml $(LOCKS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --only-binary :all: --require-hashes \
		$(addprefix -r ,$(LOCKS)) --dest $(WHEELHOUSE)
	touch $(STAMP)

# The runtime dependencies (requirements.lock) and the build backend (requirements-build.lock),
# pinned with their hashes, resolved from the package index for Python 3.11 on any platform.
lock:
	test -x $(BIN)/uv || $(MAKE) $(STAMP)
	$(COMPILE) pyproject.toml -o requirements.lock
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(COMPILE) - -o requirements-build.lock

serve: $(STAMP)
	$(BIN)/mail2sms serve

lint: $(STAMP)
	$(BIN)/ruff check gateway tests bench migrations
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
