# RadGrid — two commands set up a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
export PATH := $(PATH):/opt/swift/usr/bin
BIN := .build/debug
# OpenVINO's pkg-config file (scripts/openvino.sh writes it into the project-local .openvino/).
export PKG_CONFIG_PATH := $(CURDIR)/.openvino/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))

.PHONY: all deps build build-release test run soak bench fuzz clean

all: build

## deps: install missing Debian packages (redis-server, libhiredis-dev, libzstd-dev, ...) and
## OpenVINO's runtime from its pinned PyPI wheel into .openvino/ (the worker's model runtime)
deps:
	@scripts/deps.sh
	@scripts/openvino.sh

## build: debug build of every target
build: deps
	$(SWIFT) build

build-release: deps
	$(SWIFT) build -c release

# The suites that run the whole grid as processes (and a browser) run after the rest, not
# beside it: on two cores they would starve the timing checks of the others.
# So do the suites that run heavy outside tools (kubernetes-validate, onnxruntime in Python).
WHOLE_GRID_TESTS := GridEndToEndTests|ClusterGridTests|PortalEndToEndTests|DIMSEGridTests|EdgeGridTests|AuditCheckpointGridTests|LeastPrivilegeGridTests|DeploymentManifestTests|ModelScreenerTests
# The model and hard-phantom suites keep both cores busy for a while (phantom generation,
# inference): run beside the rest, they held up the cooperative pool that other suites'
# timing checks wait on. They run apart, between the two.
# The suites that run a second time against a Redis Cluster (3 masters, 3 replicas).
CLUSTER_TESTS := TaskQueueTests|StudyStoreTests|RouterRedisTests|RouterConcurrencyTests|CoordinatorTests|AccountStoreTests|GridEndToEndTests
MODEL_TESTS := HardPhantomTests|ModelInputTests|OpenVINONodeTests|SiteModelExampleTests|ModelStageTests

## test: build everything (integration tests start the real executables), then run the
## whole suite against a private redis-server on a free port, always stopped afterwards.
## The pinned Python references (.pydeps: pydicom's charset files, …) are installed first.
## Last, a short fixed-seed libFuzzer run of both DICOM harnesses under AddressSanitizer
## (fails if they do not build or anything crashes; their build lives in .build-fuzz).
## The queue, store, router, coordinator and end-to-end suites then run again against a
## private Redis Cluster (scripts/with-private-redis-cluster.sh).
test: deps
	scripts/pydeps.sh
	$(SWIFT) build --build-tests
	scripts/with-private-redis.sh -- $(SWIFT) test --skip-build --skip '$(WHOLE_GRID_TESTS)|$(MODEL_TESTS)'
	scripts/with-private-redis.sh -- $(SWIFT) test --skip-build --filter '$(MODEL_TESTS)'
	scripts/with-private-redis.sh -- $(SWIFT) test --skip-build --filter '$(WHOLE_GRID_TESTS)'
	scripts/with-private-redis-cluster.sh -- $(SWIFT) test --skip-build --filter '$(CLUSTER_TESTS)'
	Tests/Ops/backup-restore-test.sh
	scripts/fuzz-dicom.sh --smoke

## soak: the long chaos/soak variants of the integration tests.
soak: deps
	$(SWIFT) build --build-tests
	RADGRID_SOAK=1 scripts/with-private-redis.sh -- $(SWIFT) test --skip-build

## run: the whole grid locally (`radgrid up`: private redis-server with AOF, coordinator,
## router, 2 workers, gateway, 600 demo experts), a demo batch of phantom CT studies, live
## progress and the final case -> expert table; then the grid stops by itself.
run: build
	BIN=$(BIN) scripts/run-demo.sh

## bench: release-build benchmarks against a private redis-server (figures in docs/BENCHMARKS.md).
bench: build-release
	scripts/bench.sh

## fuzz: libFuzzer + AddressSanitizer on the DICOM reader and on each pixel codec, FUZZ_SECONDS
## (default 60) per harness; a crash leaves its input in fuzz-out/crashes/ and fails.
fuzz: deps
	scripts/fuzz-dicom.sh $${FUZZ_SECONDS:-60}

clean:
	rm -rf .build
