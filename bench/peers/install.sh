#!/usr/bin/env bash
# Install the Node.js clients of the peers that the benchmarks compare vecdb
# with, at the exact versions pinned in package.json and package-lock.json
# beside this script:
#
#   @lancedb/lancedb                    0.31.0  (with its linux-x64-gnu binding)
#   apache-arrow                        18.1.0  (newest that LanceDB accepts)
#   chromadb                            3.0.14  (client and `chroma run` server)
#   chromadb-js-bindings-linux-x64-gnu  1.0.5
#
# `npm ci` installs them into .cache/bench-peers/node_modules in the
# repository, where the adapters load them from. Optional dependencies are
# left out: they are LanceDB's embedding helpers (Hugging Face transformers,
# OpenAI) and the bindings for other platforms, which the adapters never use.
# The native bindings are built for Linux x86-64 with glibc only.
#
# A later run with the same lock file only checks a stamp and prints one line.
#
# Environment:
#   VECDB_CACHE_DIR  parent of the bench-peers folder (default: .cache/ in
#                    the repository)
set -euo pipefail

peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "${peers_dir}/../.." && pwd)"
cache_dir="${VECDB_CACHE_DIR:-${repo_root}/.cache}"
install_dir="${cache_dir}/bench-peers"

# Each pinned package, its version, and "load" when require() must load it
# here: that loads LanceDB's and Chroma's native bindings.
pinned=(
  "@lancedb/lancedb 0.31.0 load"
  "@lancedb/lancedb-linux-x64-gnu 0.31.0 -"
  "apache-arrow 18.1.0 load"
  "chromadb 3.0.14 -"
  "chromadb-js-bindings-linux-x64-gnu 1.0.5 load"
)

# The stamp contains the checksum of package.json and the lock file. It is
# written only after every package was checked, so a failed install is redone.
lock_sha256="$(cat "${peers_dir}/package.json" \
  "${peers_dir}/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "${install_dir}/.sha256" 2>/dev/null)" == "${lock_sha256}" ]]; then
  echo "install.sh: peers already installed in ${install_dir}"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "install.sh: npm not found; install Node.js 20 or newer with npm" >&2
  exit 1
fi

mkdir -p "${install_dir}"
rm -f "${install_dir}/.sha256"
cp "${peers_dir}/package.json" "${peers_dir}/package-lock.json" \
  "${install_dir}/"

echo "install.sh: installing the pinned peer clients into ${install_dir}"
# The silly log level makes npm name the packages it was still unpacking
# when it failed ("unfinished npm timer reifyNode:node_modules/NAME").
log="${install_dir}/npm-install.log"
if ! (cd "${install_dir}" &&
  NPM_CONFIG_UPDATE_NOTIFIER=false npm ci --omit=optional --no-audit \
    --no-fund --loglevel=silly >"${log}" 2>&1); then
  grep '^npm error' "${log}" | tail -n 20 >&2
  pattern='s/.*unfinished npm timer reifyNode:node_modules\/\([^ ]*\).*/\1/p'
  unfinished="$(sed -n "${pattern}" "${log}" | paste -sd, -)"
  echo "install.sh: npm ci failed" \
    "${unfinished:+while installing ${unfinished}}; nothing was" \
    "installed. The full log is ${log}" >&2
  exit 1
fi

# Name every pinned package that is missing, has another version or whose
# native binding does not load (for example for want of a newer glibc).
failed=0
for pin in "${pinned[@]}"; do
  read -r name version check <<<"${pin}"
  manifest="${install_dir}/node_modules/${name}/package.json"
  installed="$(node -p "require(process.argv[1]).version" "${manifest}" \
    2>/dev/null || true)"
  if [[ "${installed}" != "${version}" ]]; then
    echo "install.sh: ${name}@${version} is not installed" \
      "(found: ${installed:-nothing})" >&2
    failed=1
    continue
  fi
  if [[ "${check}" == load ]] &&
    ! load_error="$(cd "${install_dir}" &&
      node -e "require(process.argv[1])" "${name}" 2>&1)"; then
    echo "install.sh: ${name}@${version} is installed but fails to load:" >&2
    echo "${load_error}" | grep -m 3 "Error" >&2
    failed=1
  fi
done
if ((failed)); then
  echo "install.sh: installing the peers failed; see the messages above" >&2
  exit 1
fi

echo "${lock_sha256}" >"${install_dir}/.sha256"
echo "install.sh: peers installed in ${install_dir}"
