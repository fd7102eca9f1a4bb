#!/usr/bin/env bash
# Reproduce bench/results/compare.md and its plots: install the benchmark's
# dependencies, build vecdb, fetch the data sets and run bench/compare.py,
# which compares vecdb with raw FAISS, hnswlib, LanceDB and Chroma.
# Arguments go to bench/compare.py, for example:
#
#   scripts/bench.sh                 # every data set, 1,000,000 synthetic
#   scripts/bench.sh --quick         # 200,000 synthetic, fewer queries
#   scripts/bench.sh --datasets fashion-l2,fiori-cosine
#
# Environment:
#   VECDB_BUILD_DIR   build directory (default: build/ in the repository)
#   VECDB_SKIP_SETUP  set to 1 to skip install, build and fetch
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VECDB_BUILD_DIR="${VECDB_BUILD_DIR:-${repo_root}/build}"

if [[ "${VECDB_SKIP_SETUP:-0}" != 1 ]]; then
  "${repo_root}/scripts/install-deps.sh" --bench
  "${repo_root}/scripts/build.sh"
  "${repo_root}/scripts/fetch-data.sh"
fi

# Debian's python3-grpcio, numpy, faiss and hnswlib are visible only to
# this Python.
exec /usr/bin/python3 "${repo_root}/bench/compare.py" \
  --server-binary "${VECDB_BUILD_DIR}/rpc/vecdb-server" \
  --search-client "${VECDB_BUILD_DIR}/bench/search_client" \
  --python-stubs "${VECDB_BUILD_DIR}/python" "$@"
