.PHONY: run test bench lint

# Set up (venv, install) and run Portway with embedded defaults.
run:
	scripts/run.sh

# Set up and run the whole test suite plus ruff and mypy.
test:
	scripts/test.sh

# Run the load benchmarks against nginx and HAProxy (see bench/README.md).
bench:
	bench/run.sh
