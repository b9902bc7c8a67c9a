# The README's two commands: `make run` and `make test`. Both install missing Debian
# packages first (packaging/install-deps.sh is a no-op when all are present).
PRESET ?= default
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: deps test-deps build run test web-deps ui ui-check clean deb arm64 deb-arm64 image

deps:
	@./packaging/install-deps.sh

test-deps:
	@./packaging/install-deps.sh --test

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

run: build
	./$(BUILD_DIR)/zapd serve

# The web UI's npm packages (Vite, TypeScript, Preact, playwright-core for the browser
# tests) exactly as web/package-lock.json lists them, when the lock changed.
web-deps: test-deps
	@if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
	  echo "web: npm ci" >&2; cd web && npm ci --no-audit --no-fund --loglevel=error; fi

test: test-deps web-deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Rebuilds web/dist from web/src (then `make build` embeds it).
ui: web-deps
	cd web && npm run build

# CI: the committed bundle must be exactly what web/src builds.
ui-check: ui
	@if [ -n "$$(git status --porcelain -- web/dist web/package-lock.json)" ]; then \
	  git status --short -- web/dist web/package-lock.json; \
	  echo "web/dist (or the lock) differs from what web/src builds: run 'make ui' and commit both" >&2; exit 1; fi

# $(BUILD_DIR)/zapd_<version>_amd64.deb (cmake/packaging.cmake): /usr/bin/zapd stripped,
# /etc/zapd/zapd.toml, the hardened unit, the zapd user made by its postinst.
deb: build
	@./packaging/install-deps.sh --package
	cd $(BUILD_DIR) && cpack -G DEB

# The container image zapd:<version> (packaging/Dockerfile): the .deb above installed with apt
# on a Debian 12 minbase made locally by packaging/image-base.sh (debootstrap; no registry is
# reachable here, so nothing is pulled), built by buildah with chroot isolation (no daemon, no
# user namespaces needed). Docker format: OCI images drop HEALTHCHECK. Needs root.
# Test: ZAPD_IMAGE_TEST=1 tests/packaging/image_test.sh (CTest label `image`). Not in .ci/run:
# the first base takes 2-3 min of debootstrap and each image 1-1.5 min (apt inside) on 2 cores,
# too much for CI's budget; run it by hand.
VERSION := $(shell grep -m1 -o 'zapd VERSION [0-9.]*' CMakeLists.txt | cut -d' ' -f3)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
IMAGE ?= zapd:$(VERSION)
image: deb
	@./packaging/install-deps.sh --image
	@./packaging/image-base.sh
	buildah bud --isolation=chroot --format docker --layers=false \
	  --build-arg ZAPD_DEB=zapd_$(VERSION)_$(DEB_ARCH).deb -f packaging/Dockerfile -t $(IMAGE) $(BUILD_DIR)
	@buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' $(IMAGE)

# Raspberry Pi (arm64, 64-bit OS): a cross build with Debian's multiarch into build-arm64/
# (preset `arm64`, cmake/toolchains/aarch64-linux-gnu.cmake; install-deps.sh --arm64 adds the
# arm64 architecture, the cross compiler and the :arm64 libraries, and says what apt upgrades).
# `make arm64` builds build-arm64/zapd; `make deb-arm64` build-arm64/zapd_<version>_arm64.deb.
# .ci/arm64 also builds the tests and runs them under qemu-user.
arm64:
	@./packaging/install-deps.sh --arm64
	@cmake --preset arm64 >/dev/null
	@cmake --build --preset arm64 -j $(JOBS) --target zapd

deb-arm64: arm64
	@./packaging/install-deps.sh --package
	cd build-arm64 && cpack -G DEB

clean:
	rm -rf $(BUILD_DIR)
