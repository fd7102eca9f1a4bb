#!/usr/bin/env bash
# Build the libFuzzer targets with clang into their own build directory and
# run each for a bounded time. Exits non-zero when a target finds a crash;
# the input that caused it is left in <build>/fuzz/corpus.
#
# Environment:
#   VECDB_BUILD_DIR      build directory (default: build-fuzz/ in the
#                        repository)
#   VECDB_FUZZ_SECONDS   seconds each target runs (default: 30)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${VECDB_BUILD_DIR:-${repo_root}/build-fuzz}"

"${repo_root}/scripts/install-deps.sh" --fuzz
cmake -S "${repo_root}" -B "${build_dir}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER=clang++ -DVECDB_FUZZ=ON \
  -DVECDB_FUZZ_SECONDS="${VECDB_FUZZ_SECONDS:-30}"
cmake --build "${build_dir}" -j "$(nproc)" --target \
  request_validation_fuzzer metadata_fuzzer filter_fuzzer
ctest --test-dir "${build_dir}" --output-on-failure --label-regex fuzz
