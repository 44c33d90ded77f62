# Croupier: `make run` starts a server on the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint style types fuzz bench bench-transport bench-codec bench-store bench-load bench-leaderboard bench-cluster bench-peer bench-peer-install bench-bus bench-heartbeat bench-sfs2x-sessions bench-checkpoint bench-acceptor bench-spin-path bench-room-search bench-send-tick ts-types soak soak-cluster clean token install

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m gameserver run $(ARGS)

token: $(STAMP)
	$(PY) -m gameserver token $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

style: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

types: $(STAMP)
	$(PY) -m mypy

fuzz: $(STAMP)
	$(PY) tests/fuzz/atheris_session.py -max_total_time=$${FUZZ_SECONDS:-600} -rss_limit_mb=512 -timeout=1 -dict=tests/fuzz/session.dict

bench: $(STAMP)
	$(PY) -m bench.codec
	$(PY) -m bench.transport --quick

CONNECTIONS ?= 200000
DURATION    ?= 300

bench-load: $(STAMP)
	$(PY) -m bench.loadgen --scenario bench/scenarios/casino.toml --connections 2000 --duration 30 --allow-unsupported --out bench/out/bench-load

# Croupier vs the Colyseus peer (bench/peers/colyseus), same sessions and rate, each server
# on one core; about 1.5 minutes per round. node_modules is installed from the lockfile.
PEER_DIR   := bench/peers/colyseus
PEER_ARGS  ?= --connections 2000 --duration 30 --rounds 1

$(PEER_DIR)/node_modules/.package-lock.json: $(PEER_DIR)/package-lock.json
	npm ci --prefix $(PEER_DIR) --no-audit --no-fund

bench-peer-install: $(PEER_DIR)/node_modules/.package-lock.json

bench-peer: $(STAMP) bench-peer-install
	$(PY) -m bench.peer $(PEER_ARGS) --out bench/out/peer

soak: $(STAMP)
	$(PY) -m bench.loadgen --scenario bench/scenarios/soak.toml --connections $(CONNECTIONS) --duration $(DURATION) --out bench/out/soak $(SOAK_ARGS)

# The same soak against one cluster (supervisor + SOAK_WORKERS workers behind one port),
# money on MariaDB (bench/scenarios/servers/soak-cluster.toml; the database is created).
SOAK_WORKERS ?= 12
SOAK_RATE    ?= 500
SOAK_GENERATORS ?= 0

soak-cluster: $(STAMP)
	$(PY) -m bench.cluster held --workers $(SOAK_WORKERS) --connections $(CONNECTIONS) --duration $(DURATION) \
		--rate $(SOAK_RATE) --generators $(SOAK_GENERATORS) --scenario bench/scenarios/soak.toml --config bench/scenarios/servers/soak-cluster.toml \
		--out bench/out/soak-cluster

bench-bus: $(STAMP)
	$(PY) -m bench.bus

bench-checkpoint: $(STAMP)
	$(PY) -m bench.checkpoint

bench-acceptor: $(STAMP)
	$(PY) -m bench.acceptor $(ARGS)

# Cluster: sessions held by N workers (load generator), a rolling restart and a SIGKILL under spins.
bench-cluster: $(STAMP)
	$(PY) -m bench.cluster held --workers 3 --connections 30000 --duration 20
	$(PY) -m bench.cluster rolling --workers 2 --players 100 --idle 1000
	$(PY) -m bench.cluster rolling --workers 2 --players 100 --idle 1000 --kill

# Server and load-generator CPU per login, per held session and per heartbeat ping
# (one server process, real loopback sockets; bench/RESULTS.md)
bench-heartbeat: $(STAMP)
	$(PY) -m bench.heartbeat $(ARGS)

# A SmartFox (SFS2X) TCP session against a native TCP one: server RSS, CPU per login and
# per ping, side by side in one run (bench/RESULTS.md)
bench-sfs2x-sessions: $(STAMP)
	$(PY) -m bench.sfs2x_sessions $(ARGS)

# server CPU per spin request without sockets (decode, casino, ledger, rewards, reply),
# at 2 and 200 spins in flight: the sparse and the batched case
bench-spin-path: $(STAMP)
	$(PY) -m bench.spin_path --clients 2 --spins 4000 $(ARGS)
	$(PY) -m bench.spin_path --clients 200 --spins 20000 $(ARGS)

# the TypeScript client's request types, generated from protocol/messages.py
ts-types: $(STAMP)
	$(PY) -m protocol.typescript > clients/ts/src/messages.ts

bench-codec: $(STAMP)
	$(PY) -m bench.codec

# room search in zones of 1,000 and 10,000 rooms: find_rooms and quick join's candidates
# against list_rooms, side by side (no I/O)
bench-room-search: $(STAMP)
	$(PY) -m bench.room_search $(ARGS)

# a lobby chatting at a steady rate, send ticks 0 / 25 / 50 ms side by side: server CPU per
# delivered event against delivery time (ARGS: e.g. --ticks 0,10 --rate 400)
bench-send-tick: $(STAMP)
	$(PY) -m bench.send_tick $(ARGS)

# durable spins/s, group commit vs one transaction per spin, SQLite and MariaDB side by side
# (MariaDB at 127.0.0.1:3306; a database croupier_bench is created and dropped)
bench-store: $(STAMP)
	$(PY) -m bench.store --backend sqlite,mysql --workers 2 --concurrency 1000 --seconds 5 $(ARGS)

bench-transport: $(STAMP)
	$(PY) -m bench.transport

# Leaderboard streaming: in-process fan-out to 10,000 subscribers at 10,000 score updates/s,
# then real WebSocket clients in SOCKET_SUBSCRIBERS/LB_CLIENTS processes (bench/RESULTS.md).
SOCKET_SUBSCRIBERS ?= 2000
LB_CLIENTS ?= 2
bench-leaderboard: $(STAMP)
	$(PY) -m bench.leaderboard
	$(PY) -m bench.leaderboard_stream --subscribers 10000 --rate 10000 --seconds 10 --socket-subscribers $(SOCKET_SUBSCRIBERS) --clients $(LB_CLIENTS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
