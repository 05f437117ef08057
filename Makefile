# Thin wrapper over CMake. The README's two commands:
#   make demo   install what is missing, build, run a 5-agent mesh on loopback
#   make test   install what is missing, build, run every test (plain build),
#               then the unit tests again under ASan + UBSan
JOBS ?= 2

.PHONY: all deps build build-san test test-unit test-san demo bench clean

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

test-unit: build
	ctest --test-dir build --output-on-failure -L unit

demo: build
	python3 scripts/demo.py --bin build

clean:
	rm -rf build build-san
