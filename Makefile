# The two commands of the README: `make run` and `make test`. Both set everything up first.
FACEID := ./target/release/faceid
SAMPLES := models/samples

.PHONY: setup run demo test lint eval bench

setup:
	./scripts/setup.sh

# The main command: the kiosk, fullscreen, on the start screen (the demo video stands in
# for a missing webcam). Needs a display; under Xvfb: xvfb-run make run.
run: setup
	./target/release/faceid-kiosk

# The engine on the sample photos, from the command line.
demo: setup
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
