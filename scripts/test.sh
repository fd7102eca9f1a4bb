#!/usr/bin/env bash
# Install the dependencies, build and run every test registered with ctest.
# Exits with ctest's status. The tests make their own data, so the data sets
# of scripts/fetch-data.sh are not fetched.
#
# Environment:
#   VECDB_BUILD_DIR           build directory (default: build/ in the
#                             repository)
#   VECDB_TEST_LABELS         run only tests whose label matches this regex
#                             (ctest -L): "unit" or "e2e"; default: all tests
#   VECDB_TEST_EXCLUDE_LABELS skip tests whose label matches this regex
#                             (ctest -LE); default: none
#   VECDB_TEST_JOBS           tests run in parallel (default: 1)
#   VECDB_TEST_TIMEOUT        seconds allowed per test that sets no TIMEOUT
#                             property of its own (default: 900)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VECDB_BUILD_DIR="${VECDB_BUILD_DIR:-${repo_root}/build}"

"${repo_root}/scripts/install-deps.sh"
"${repo_root}/scripts/build.sh"

ctest_args=(
  --test-dir "${VECDB_BUILD_DIR}"
  --output-on-failure
  --no-tests=error
  --parallel "${VECDB_TEST_JOBS:-1}"
  --timeout "${VECDB_TEST_TIMEOUT:-900}"
)
if [[ -n "${VECDB_TEST_LABELS:-}" ]]; then
  ctest_args+=(--label-regex "${VECDB_TEST_LABELS}")
fi
if [[ -n "${VECDB_TEST_EXCLUDE_LABELS:-}" ]]; then
  ctest_args+=(--label-exclude "${VECDB_TEST_EXCLUDE_LABELS}")
fi

ctest "${ctest_args[@]}"
