#!/usr/bin/env bash
# Configure and build vecdb with CMake. Extra arguments go to the configure
# step, for example: scripts/build.sh -DCMAKE_CXX_COMPILER=clang++
#
# Environment:
#   VECDB_BUILD_DIR   build directory (default: build/ in the repository)
#   VECDB_BUILD_TYPE  CMAKE_BUILD_TYPE (default: Release)
#   VECDB_BUILD_JOBS  parallel compile jobs (default: the number of cores)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${VECDB_BUILD_DIR:-${repo_root}/build}"
build_type="${VECDB_BUILD_TYPE:-Release}"
build_jobs="${VECDB_BUILD_JOBS:-$(nproc)}"

cmake -S "${repo_root}" -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE="${build_type}" "$@"
cmake --build "${build_dir}" -j "${build_jobs}"
