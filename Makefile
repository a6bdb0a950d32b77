.DEFAULT_GOAL := help
.PHONY: help setup demo test test-pins test-newest test-floors test-fast lint format typecheck check bench bench-quick lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: ## Create/refresh .venv from constraints.txt
	./dev setup

demo: ## Run the offline demo (no API key, no Redis server needed)
	./dev demo

test: ## The whole test matrix: lint, pins, fast path off, newest, floors (what CI runs)
	./dev test

test-pins: ## The suite on the pinned versions only
	./dev test tests

test-newest: ## The suite on the newest versions pyproject.toml allows (resolved afresh)
	./dev test-newest

test-floors: ## The quick run on the floors of pyproject.toml
	./dev test-floors

test-fast: ## Unit tests only
	./dev test tests/unit_tests -q

lint: ## ruff lint + format check
	./dev ruff check streamagent tests benchmarks scripts
	./dev ruff format --check streamagent tests benchmarks scripts

format: ## Format the code
	./dev ruff format streamagent tests benchmarks scripts
	./dev ruff check --fix streamagent tests benchmarks scripts

typecheck: ## mypy --strict on the package
	./dev mypy

check: lint typecheck test ## Everything CI checks

bench: ## Run every benchmark (prints markdown tables; ~40 min)
	./dev python benchmarks/streaming.py
	./dev python benchmarks/checkpointers.py
	./dev python benchmarks/tools.py
	./dev python benchmarks/chaos.py
	./dev python benchmarks/scaleout.py
	./dev python benchmarks/load.py

bench-quick: ## Quick versions of the benchmarks that have one
	./dev python benchmarks/streaming.py --rounds 3
	./dev python benchmarks/load.py --quick
	./dev python benchmarks/scaleout.py --quick

lock: ## Regenerate constraints.txt from the current venv (host-free)
	./dev python -m pip freeze --exclude-editable | grep -v '@ file' > constraints.new && mv constraints.new constraints.txt

clean: ## Remove caches (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
