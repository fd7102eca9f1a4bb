#!/usr/bin/env bash
# Runs one libFuzzer binary for a bounded time.
# Usage: run_fuzzer.sh FUZZER WORK_CORPUS SEED_CORPUS SECONDS
# The work corpus starts as a copy of the seed inputs and keeps what the
# fuzzer finds between runs. A crash leaves its input in the work corpus's
# parent folder and fails the test.
set -euo pipefail
fuzzer="$1"
work_corpus="$2"
seed_corpus="$3"
seconds="$4"

mkdir -p "${work_corpus}"
if [[ -d "${seed_corpus}" ]]; then
  cp -n "${seed_corpus}"/* "${work_corpus}"/ 2>/dev/null || true
fi
cd "$(dirname "${work_corpus}")"
exec "${fuzzer}" -max_total_time="${seconds}" -max_len=4096 \
  -print_final_stats=1 "${work_corpus}"
