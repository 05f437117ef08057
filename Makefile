# Thin wrapper over CMake. The README's two commands:
#   make demo   install what is missing, build, run a 5-agent mesh on loopback
#   make test   install what is missing, build, run every test (plain build),
#               then the unit tests again under ASan + UBSan, then a short
#               run of each fuzz target (when clang is installed)
#   make fuzz       build the libFuzzer targets (clang) in build-fuzz and run
#                   each for FUZZ_SECONDS (default 60), one at a time
#   make fuzz-corpus  regenerate the seed corpora fuzz/corpus/ from real messages
#   make coverage   gcc --coverage build in build-cov, unit tests, line
#                   coverage of agent/core/ and crdt/ (gcovr)
JOBS ?= 2
# make fuzz: seconds per target; make test runs each for FUZZ_SMOKE_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
# Whether clang with its libFuzzer runtime is here.
HAVE_FUZZ = $(shell command -v clang >/dev/null 2>&1 && \
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
	>/dev/null 2>&1 && echo yes)

.PHONY: all deps build build-san test test-unit test-san demo bench clean \
	build-fuzz fuzz fuzz-smoke fuzz-corpus coverage

all: build

deps:
	@sh scripts/deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

build-san: deps
	cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DMESH_SANITIZE=ON >/dev/null
	cmake --build build-san -j $(JOBS)

test: build build-san
	ctest --test-dir build --output-on-failure
	ctest --test-dir build-san --output-on-failure -L unit
	@$(MAKE) --no-print-directory fuzz-smoke

test-unit: build
	ctest --test-dir build --output-on-failure -L unit

demo: build
	python3 scripts/demo.py --bin build

# Fuzzing (fuzz/, docs/fuzzing.md). CC=clang for this build dir only.
build-fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DMESH_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target fuzz

fuzz: build-fuzz
	sh fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

fuzz-smoke:
ifeq ($(HAVE_FUZZ),yes)
	@$(MAKE) --no-print-directory build-fuzz
	sh fuzz/run.sh build-fuzz $(FUZZ_SMOKE_SECONDS)
else
	@echo "fuzz: clang with libFuzzer is not installed; fuzz smoke skipped"
endif

fuzz-corpus: build-fuzz
	rm -rf fuzz/corpus
	build-fuzz/fuzz/fuzz_gen_corpus fuzz/corpus

# Line coverage of the core and the CRDTs under the unit tests.
coverage:
	@sh scripts/deps.sh gcovr
	cmake -S . -B build-cov -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS="--coverage -O0" \
		-DCMAKE_EXE_LINKER_FLAGS="--coverage" >/dev/null
	cmake --build build-cov -j $(JOBS)
	find build-cov -name '*.gcda' -delete
	ctest --test-dir build-cov --output-on-failure -L unit
	gcovr -r . --object-directory build-cov build-cov \
		--filter 'agent/core/' --filter 'crdt/' \
		--print-summary --sort-percentage \
		--txt build-cov/coverage.txt
	@cat build-cov/coverage.txt

clean:
	rm -rf build build-san build-fuzz build-cov
