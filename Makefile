# rtpbridge build, run and test entry points. `make` installs what is missing (Debian build
# packages, the pinned FFmpeg, test tools) before it builds or tests.
SHELL := /bin/bash
GO ?= go

FFMPEG_PREFIX := $(CURDIR)/ffmpeg/prefix
export PKG_CONFIG_PATH := $(FFMPEG_PREFIX)/lib/pkgconfig
export CGO_ENABLED := 1

# Go's build cache does not see the static FFmpeg libraries that cgo links, so the FFmpeg build
# stamp goes into the cgo flags: a rebuilt FFmpeg always relinks. Read when each recipe runs, after
# `ffmpeg` has brought the prefix up to date.
GO_CGO = CGO_CFLAGS="-O2 -g -DRTPBRIDGE_FFMPEG_STAMP=$$(cat $(FFMPEG_PREFIX)/.stamp 2>/dev/null)"

BIN := bin/rtpbridge
# Debian packages the tests use as independent peers and judges (RUNLEVEL=1 keeps their
# daemons from being started by the install).
TEST_TOOLS := ffmpeg tshark espeak-ng prometheus nginx-light sox libsox-fmt-all chromium
FUZZTIME ?= 10s
BENCHTIME ?= 1s

.PHONY: all build ffmpeg run test test-tools lint bench fuzz clean

all: build

## ffmpeg: build the pinned static FFmpeg into ffmpeg/prefix (a no-op when up to date)
ffmpeg:
	@bash ffmpeg/build.sh "$(FFMPEG_PREFIX)"

## build: compile bin/rtpbridge
build: ffmpeg
	$(GO_CGO) $(GO) build -trimpath -o $(BIN) ./cmd/rtpbridge

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
		apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## lint: gofmt and go vet
lint: ffmpeg
	@unformatted=$$(gofmt -l cmd pkg); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO_CGO) $(GO) vet ./...

# Packages whose zero-allocation checks need a run without the race detector, whose
# instrumentation distorts allocation counts.
ALLOC_PKGS := ./pkg/codec ./pkg/rtpnet ./pkg/rtpstats ./pkg/sdes ./pkg/session ./pkg/endpoint/webrtc ./pkg/recording

## test: gofmt check, go vet, the allocation checks, then every test under the race detector
test: ffmpeg test-tools lint
	$(GO_CGO) $(GO) test -count=1 -run 'AllocatesNothing|DoesNotAllocate|DoNotAllocate' $(ALLOC_PKGS)
	$(GO_CGO) $(GO) test -race -count=1 -timeout 30m ./...

## bench: every benchmark with allocation counts
bench: ffmpeg
	$(GO_CGO) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## fuzz: run each fuzz target for FUZZTIME (default 10s)
fuzz: ffmpeg
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO_CGO) $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin ffmpeg/build ffmpeg/prefix
