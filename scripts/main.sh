#!/usr/bin/env bash
# Run vecdb's main job end to end: install the dependencies, build, fetch the
# data sets, start vecdb-server on a free loopback port with a fresh data
# directory, and run the example clients against it. Exits non-zero when a
# step, a client's check or the server's shutdown failed.
#
# Environment:
#   VECDB_BUILD_DIR       build directory (default: build/ in the repository)
#   VECDB_SKIP_SETUP      set to 1 to skip install, build and fetch, and use
#                         the server and stubs already in VECDB_BUILD_DIR
#   VECDB_KEEP_WORK_DIR   set to 1 to keep the server's data directory and log
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VECDB_BUILD_DIR="${VECDB_BUILD_DIR:-${repo_root}/build}"
# Debian's python3-grpcio and python3-numpy are visible only to this Python.
python=/usr/bin/python3

if [[ "${VECDB_SKIP_SETUP:-0}" != 1 ]]; then
  "${repo_root}/scripts/install-deps.sh"
  "${repo_root}/scripts/build.sh"
  "${repo_root}/scripts/fetch-data.sh"
fi

server="${VECDB_BUILD_DIR}/rpc/vecdb-server"
if [[ ! -x "${server}" ]]; then
  echo "main.sh: ${server} not found; run scripts/build.sh first" >&2
  exit 1
fi

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/vecdb-main.XXXXXX")"
server_log="${work_dir}/server.log"
port_file="${work_dir}/port"
server_pid=""
server_exit=0

# Stops the server with SIGTERM, which should end it cleanly with exit
# status 0, and records that status.
stop_server() {
  if [[ -z "${server_pid}" ]]; then
    return
  fi
  kill -TERM "${server_pid}" 2>/dev/null || true
  wait "${server_pid}" || server_exit=$?
  server_pid=""
}

cleanup() {
  stop_server
  if [[ "${VECDB_KEEP_WORK_DIR:-0}" == 1 ]]; then
    echo "main.sh: kept the server's data and log in ${work_dir}"
  else
    rm -rf "${work_dir}"
  fi
}
trap cleanup EXIT

"${server}" --data_dir "${work_dir}/data" --listen 127.0.0.1:0 \
  --port_file "${port_file}" >"${server_log}" 2>&1 &
server_pid=$!

# The server writes the port file once it is serving.
for ((attempt = 0; attempt < 300; attempt++)); do
  if [[ -s "${port_file}" ]] && grep -qE '^[0-9]+$' "${port_file}"; then
    break
  fi
  if ! kill -0 "${server_pid}" 2>/dev/null; then
    wait "${server_pid}" || server_exit=$?
    server_pid=""
    echo "main.sh: vecdb-server exited with status ${server_exit}" \
      "before serving; its log:" >&2
    cat "${server_log}" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ ! -s "${port_file}" ]]; then
  echo "main.sh: vecdb-server wrote no port file within 30 s; its log:" >&2
  cat "${server_log}" >&2
  exit 1
fi
address="127.0.0.1:$(cat "${port_file}")"
echo "main.sh: vecdb-server (pid ${server_pid}) serving on ${address}"

export PYTHONPATH="${VECDB_BUILD_DIR}/python${PYTHONPATH:+:${PYTHONPATH}}"
failed=()
for client in client_example.py fashion_mnist.py fiori_rag.py; do
  echo
  echo "main.sh: running examples/${client}"
  start_seconds=${SECONDS}
  if "${python}" "${repo_root}/examples/${client}" --server "${address}"; then
    echo "main.sh: ${client} passed in $((SECONDS - start_seconds)) s"
  else
    echo "main.sh: ${client} FAILED (exit status $?)" >&2
    failed+=("${client}")
  fi
done

echo
stop_server
if ((server_exit != 0)); then
  echo "main.sh: vecdb-server exited with status ${server_exit} after" \
    "SIGTERM, expected 0; the end of its log:" >&2
  tail -n 50 "${server_log}" >&2
  failed+=(vecdb-server)
else
  echo "main.sh: vecdb-server stopped cleanly (exit status 0)"
fi

if ((${#failed[@]} > 0)); then
  echo "main.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "main.sh: all checks passed"
