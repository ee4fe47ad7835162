# The two commands of the README: `make run` and `make test`. Both set everything up first.
FACEID := ./target/release/faceid
SAMPLES := models/samples

.PHONY: setup run test lint eval bench

setup:
	./scripts/setup.sh

# The main job, for now: the engine on the sample photos.
run: setup
	$(FACEID) detect $(SAMPLES)/sample1.jpg
	$(FACEID) card $(SAMPLES)/sample1.jpg
	$(FACEID) bench --runs 50

test: setup
	cargo test --release --locked --workspace -- --show-output

lint:
	cargo fmt --all -- --check
	cargo clippy --release --locked --all-targets -- -D warnings

eval: setup
	$(FACEID) eval ../shared/eval

bench: setup
	$(FACEID) bench --runs 300
