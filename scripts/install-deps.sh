#!/usr/bin/env bash
# Install the Debian 12 packages that vecdb needs to build, test, benchmark
# and run its examples. Only missing packages are installed, so a second run
# prints nothing and exits 0. Runs apt-get through sudo when not root.
# With --fuzz it also installs clang and libFuzzer for scripts/fuzz.sh; with
# --bench, hnswlib's Python module and matplotlib for bench/compare.py.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev libfaiss-dev libopenblas-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev zlib1g-dev libcli11-dev libsimdjson-dev
  libcivetweb-dev openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-grpcio python3-numpy python3-faiss libhnswlib-dev
  dataset-fashion-mnist
)
for option in "$@"; do
  case "${option}" in
    --fuzz) packages+=(clang libfuzzer-14-dev) ;;
    --bench) packages+=(python3-hnswlib python3-matplotlib util-linux) ;;
    *)
      echo "install-deps.sh: unknown option ${option}; use --fuzz or" \
        "--bench" >&2
      exit 2
      ;;
  esac
done

is_installed() {
  local status
  status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" ||
    return 1
  [[ "${status}" == installed ]]
}

missing=()
for package in "${packages[@]}"; do
  if ! is_installed "${package}"; then
    missing+=("${package}")
  fi
done

# fetch-data.sh needs npm, which may come from outside Debian (for example
# with a separately installed Node.js), so the command is what counts here.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps.sh: not root and sudo not found; install these" \
    "packages by hand: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -qq -y --no-install-recommends \
  "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
