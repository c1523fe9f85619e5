# Lookout: the two commands a newcomer needs are `make run` and `make test`.
# Each installs what it needs first and skips what is already there.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
GOPATH  := $(shell $(GO) env GOPATH)
GOBIN   := $(GOPATH)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

# Pinned tool versions.
INFLUXDB_VERSION    := v1.8.10
STATICCHECK_VERSION := v0.7.0
INFLUXD             := $(GOBIN)/influxd
STATICCHECK         := $(GOBIN)/staticcheck

# Debian packages the tests drive as real peers, by the command each provides
# (the CJK font, which screenshots of the Chinese pages need, by its file).
APT_PACKAGES := mosquitto mosquitto-clients ffmpeg chromium fonts-wqy-zenhei
APT_COMMANDS := /usr/sbin/mosquitto /usr/bin/mosquitto_passwd /usr/bin/ffmpeg /usr/bin/chromium \
                /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc

# The browser tests' npm packages (playwright-core, which drives Debian's
# chromium above and never downloads a browser).
BROWSER_DIR := tests/browser

# The console's front end (Vue, TypeScript, Vite), built into
# console/web/dist and embedded in the binary.
WEB_DIR     := console/web
WEB_BUILD   := $(WEB_DIR)/dist/index.html
WEB_SOURCES := $(shell find $(WEB_DIR)/src $(WEB_DIR)/public -type f 2>/dev/null) \
               $(WEB_DIR)/index.html $(WEB_DIR)/vite.config.ts $(WEB_DIR)/tsconfig.json $(WEB_DIR)/package-lock.json

GO_SOURCES := $(shell find . -name '*.go' -not -path './node_modules/*' -not -name '*_test.go') go.mod go.sum \
              $(wildcard configs/*.yaml configs/demo/*.yaml internal/sqldb/migrations/*.sql internal/demo/clips/*.h264)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help run build web test test-deps apt-deps node-deps browser-deps web-deps influxd bench lint clean

help:
	@echo "make run    the whole system on the embedded default, demo data included"
	@echo "make test   install the test peers if missing, then run every test with -race"
	@echo "make bench  Go benchmarks and lookout-bench measurements (docs/BENCHMARKS.md)"
	@echo "make lint   gofmt, go vet, staticcheck"

build: bin/lookout bin/lookout-bench

bin/lookout: $(GO_SOURCES) $(WEB_BUILD)
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/lookout

bin/lookout-bench: $(GO_SOURCES)
	$(GO) build -o $@ ./cmd/lookout-bench

# The front end is built when it is missing or older than its sources.
web: $(WEB_BUILD)

$(WEB_BUILD): $(WEB_SOURCES) $(WEB_DIR)/node_modules/.package-lock.json
	cd $(WEB_DIR) && npm run --silent build

web-deps: $(WEB_DIR)/node_modules/.package-lock.json

$(WEB_DIR)/node_modules/.package-lock.json: $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json | node-deps
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: bin/lookout
	./bin/lookout serve --config configs/lookout.yaml

test: lint test-deps web
	cd $(WEB_DIR) && npx vitest run
	LOOKOUT_INFLUXD=$(INFLUXD) $(GO) test -race -count=1 -timeout 20m ./...

test-deps: apt-deps influxd browser-deps web-deps

# Debian packages: installed only when one of their commands (or files) is missing.
apt-deps:
	@missing=0; for c in $(APT_COMMANDS); do [ -e "$$c" ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

# Node.js and npm run the browser tests. The machine's own are used when it
# has them (NodeSource's nodejs, which carries npm and conflicts with
# Debian's npm package); only without them are Debian's installed.
node-deps:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "installing nodejs npm"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; \
	fi

# npm ci from the committed lock file, again only when it changed.
browser-deps: $(BROWSER_DIR)/node_modules/.package-lock.json

$(BROWSER_DIR)/node_modules/.package-lock.json: $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json | node-deps
	cd $(BROWSER_DIR) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# InfluxDB 1.8.10 is built from source once (about three minutes on two
# cores) and kept in GOBIN; a binary of another version is replaced.
influxd:
	@if ! $(GO) version -m $(INFLUXD) 2>/dev/null | grep -q "github.com/influxdata/influxdb[[:space:]]*$(INFLUXDB_VERSION)"; then \
	  echo "building influxd $(INFLUXDB_VERSION) (once)"; \
	  GOFLAGS=-mod=mod $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXDB_VERSION); \
	fi

$(STATICCHECK):
	GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

bench: build test-deps
	LOOKOUT_INFLUXD=$(INFLUXD) $(GO) test -run '^$$' -bench . -benchmem ./...
	./bin/lookout-bench startup --runs 10
	./bin/lookout-bench ingest --qos 0 --rate 30000 --duration 60s
	./bin/lookout-bench ingest --qos 1 --rate 10000 --duration 60s

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

clean:
	rm -rf bin
	find $(WEB_DIR)/dist -mindepth 1 ! -name .gitkeep -delete
