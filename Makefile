# The project's commands. `make` alone lists them.
.PHONY: help run stop test test-busy servers unit it fuzz build fmt lint cluster cluster-stop cluster-status bench bench-smoke bench-profile bench-servers

PORT ?= 6379
# The local cluster (scripts/cluster.sh): first port, shards, replicas per master, timeout (ms).
CLUSTER_PORT ?= 7000
MASTERS ?= 3
REPLICAS ?= 1
NODE_TIMEOUT ?= 5000
CLUSTER_ENV = PORT=$(CLUSTER_PORT) MASTERS=$(MASTERS) REPLICAS=$(REPLICAS) NODE_TIMEOUT=$(NODE_TIMEOUT)

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run: ## build the module and start a local redis-server with it (PORT=6379); installs what is missing
	@PORT=$(PORT) scripts/run.sh

stop: ## stop the server that `make run` started
	@PORT=$(PORT) scripts/run.sh stop

cluster: ## start a local Redis Cluster: 3 masters + 3 replicas on 7000-7005 (CLUSTER_PORT, MASTERS, REPLICAS)
	@$(CLUSTER_ENV) scripts/cluster.sh start

cluster-stop: ## stop the local cluster (its data stays in .cluster/)
	@$(CLUSTER_ENV) scripts/cluster.sh stop

cluster-status: ## show the local cluster's nodes, state and slots
	@$(CLUSTER_ENV) scripts/cluster.sh status

test: ## run every check and test (fmt, clippy, unit, property, clients, integration on every server); installs what is missing
	@scripts/test.sh

test-busy: build ## the integration suite with two CPU hogs running (SERVER=redis-7.0; default Redis 7.0 then Valkey 9.1)
	@scripts/test-busy.sh $(ARGS)

servers: ## install the servers of the test matrix into .deps/ (scripts/servers.sh --list names them)
	@scripts/servers.sh

unit: ## the fast loop (~1 min warm): cargo fmt --check, clippy, Rust unit and property tests
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test

it: build ## integration tests on one server (SERVER=redis-7.0 default; redis-8.2, valkey-9.1, ...); ARGS passes pytest arguments: make it ARGS="-x tests/test_allow.py"
	@scripts/servers.sh $(or $(SERVER),redis-7.0)
	SERVER=$(or $(SERVER),redis-7.0) python3 -m pytest $(or $(ARGS),tests)

fuzz: ## a short coverage-guided fuzz of each target (FUZZ_SECONDS=10; 600 for a long one)
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),10) scripts/fuzz.sh

bench: ## benchmark RL.ALLOW against the alternatives, on Redis and Valkey (~15 min): bench/results.md, bench/chart.png
	@bench/bench.sh

bench-smoke: ## the same benchmarks in seconds, to check they still run: bench/out/smoke/
	@bench/bench.sh --smoke

bench-servers: ## instructions per call of RL.ALLOW vs SET PX on every server of the matrix (callgrind): bench/results.md
	@bench/bench.sh --servers

bench-profile: ## instructions per call of RL.ALLOW vs SET PX under callgrind: bench/out/profile/
	@bench/profile.sh

build: ## build the module: target/release/librl.so
	cargo build --release

fmt: ## format the Rust code
	cargo fmt

lint: ## clippy with warnings as errors
	cargo clippy --all-targets -- -D warnings
