# rtpbridge build, run and test entry points. `make` installs what is missing (Debian build
# packages, the pinned FFmpeg, test tools) before it builds or tests.
SHELL := /bin/bash
GO ?= go

FFMPEG_PREFIX := $(CURDIR)/ffmpeg/prefix
export PKG_CONFIG_PATH := $(FFMPEG_PREFIX)/lib/pkgconfig
export CGO_ENABLED := 1

BIN := bin/rtpbridge
# Debian packages the tests use as independent peers and judges.
TEST_TOOLS := ffmpeg tshark espeak-ng prometheus
FUZZTIME ?= 10s
BENCHTIME ?= 1s

.PHONY: all build ffmpeg run test test-tools lint bench fuzz clean

all: build

## ffmpeg: build the pinned static FFmpeg into ffmpeg/prefix (a no-op when up to date)
ffmpeg:
	@bash ffmpeg/build.sh "$(FFMPEG_PREFIX)"

## build: compile bin/rtpbridge
build: ffmpeg
	$(GO) build -trimpath -o $(BIN) ./cmd/rtpbridge

## run: build and start rtpbridge on the local defaults (deploy/local/rtpbridge.toml)
run: build
	@mkdir -p recordings media .cache
	./$(BIN) -c deploy/local/rtpbridge.toml

## test-tools: install the Debian tools the tests use, if missing
test-tools:
	@missing=""; for p in $(TEST_TOOLS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing test tools:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## lint: gofmt and go vet
lint: ffmpeg
	@unformatted=$$(gofmt -l cmd pkg); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

## test: gofmt check, go vet and every test under the race detector
test: ffmpeg test-tools lint
	$(GO) test -race -count=1 -timeout 30m ./...

## bench: every benchmark with allocation counts
bench: ffmpeg
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## fuzz: run each fuzz target for FUZZTIME (default 10s)
fuzz: ffmpeg
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin ffmpeg/build ffmpeg/prefix
