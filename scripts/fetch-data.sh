#!/usr/bin/env bash
# Make the two real data sets available to the examples, tests and
# benchmarks, and print where they are:
#
#   Fashion-MNIST   from the Debian package dataset-fashion-mnist, installed
#                   by install-deps.sh into /usr/share/datasets/fashion-mnist.
#   Fiori corpus    the npm package @sap-ux/fiori-docs-embeddings 1.2.6,
#                   fetched with `npm pack` and unpacked under .cache/ in the
#                   repository. Later runs reuse the unpacked copy.
#
# Environment:
#   VECDB_CACHE_DIR  where the npm package is unpacked (default: .cache/ in
#                    the repository)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${VECDB_CACHE_DIR:-${repo_root}/.cache}"

fashion_dir=/usr/share/datasets/fashion-mnist
fiori_spec=@sap-ux/fiori-docs-embeddings@1.2.6
# SHA-256 of the registry tarball of that exact version.
fiori_sha256=71de3f54d3bd20439664ab53ffc2593cd726a55b86c8c5a47c7eb232bc424910
fiori_dir="${cache_dir}/fiori-docs-embeddings-1.2.6"
fiori_embeddings="${fiori_dir}/data/embeddings"

for name in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
  if [[ ! -f "${fashion_dir}/${name}" ]]; then
    echo "fetch-data.sh: ${fashion_dir}/${name} is missing; run" \
      "scripts/install-deps.sh to install dataset-fashion-mnist" >&2
    exit 1
  fi
done

# The stamp is written only after the tarball's checksum matched and it was
# unpacked completely, so an interrupted fetch is redone.
if [[ "$(cat "${fiori_dir}/.sha256" 2>/dev/null)" != "${fiori_sha256}" ]]; then
  mkdir -p "${cache_dir}"
  work_dir="$(mktemp -d "${cache_dir}/fetch.XXXXXX")"
  trap 'rm -rf "${work_dir}"' EXIT

  echo "fetch-data.sh: fetching ${fiori_spec} with npm pack"
  tarball="$(cd "${work_dir}" &&
    NPM_CONFIG_UPDATE_NOTIFIER=false npm pack --silent "${fiori_spec}")"
  actual_sha256="$(sha256sum "${work_dir}/${tarball}" | cut -d' ' -f1)"
  if [[ "${actual_sha256}" != "${fiori_sha256}" ]]; then
    echo "fetch-data.sh: ${tarball} has SHA-256 ${actual_sha256}," \
      "expected ${fiori_sha256}" >&2
    exit 1
  fi

  tar -xzf "${work_dir}/${tarball}" -C "${work_dir}"
  echo "${fiori_sha256}" >"${work_dir}/package/.sha256"
  rm -rf "${fiori_dir}"
  mv "${work_dir}/package" "${fiori_dir}"
fi

echo "fetch-data.sh: Fashion-MNIST in ${fashion_dir}"
echo "fetch-data.sh: Fiori corpus in ${fiori_embeddings}"
