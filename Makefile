# The project's commands. `make` alone lists them.
.PHONY: help run stop test build fmt lint

PORT ?= 6379

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## build the module and start a local redis-server with it (PORT=6379); installs what is missing
	@PORT=$(PORT) scripts/run.sh

stop: ## stop the server that `make run` started
	@PORT=$(PORT) scripts/run.sh stop

test: ## run every check and test (fmt, clippy, unit, property, integration); installs what is missing
	@scripts/test.sh

build: ## build the module: target/release/librl.so
	cargo build --release

fmt: ## format the Rust code
	cargo fmt

lint: ## clippy with warnings as errors
	cargo clippy --all-targets -- -D warnings
