// Shared parts of the peer adapters: the command line contract, reading the
// data files, loading the pinned npm packages, progress lines, and the
// query rate and latency measurements.
//
// An adapter is run as `node bench/peers/NAME.mjs SPEC.json OUT.json`; see
// README.md beside this file for both files' fields.

import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const peersDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(peersDir, "..", "..");
const cacheDir = process.env.VECDB_CACHE_DIR || path.join(repoRoot, ".cache");

// Folder that install.sh installs node_modules into.
export const installDir = path.join(cacheDir, "bench-peers");

// Queries run untimed before each timed pass, so that the first pass does
// not pay for loading the index or opening connections.
export const WARMUP_QUERIES = 50;

// Rows read from the base file and inserted per call.
export const INSERT_BATCH_ROWS = 5000;

const startTime = process.hrtime.bigint();

export function elapsedSeconds() {
  return Number(process.hrtime.bigint() - startTime) / 1e9;
}

// Prints a progress line with the seconds since the adapter started.
export function progress(system, message) {
  process.stderr.write(
    `${system}: [${elapsedSeconds().toFixed(1)} s] ${message}\n`,
  );
}

// Loads a package installed by install.sh, from the cache folder rather
// than from a node_modules beside the adapter.
export function requirePeer(name) {
  const manifest = path.join(installDir, "package.json");
  if (!fs.existsSync(path.join(installDir, ".sha256"))) {
    throw new Error(
      `the peer clients are not installed in ${installDir}; ` +
        "run bench/peers/install.sh",
    );
  }
  return createRequire(manifest)(name);
}

// Returns the version of an installed peer package.
export function peerVersion(name) {
  const manifest = path.join(installDir, "node_modules", name, "package.json");
  return JSON.parse(fs.readFileSync(manifest, "utf8")).version;
}

function requireField(spec, field, check, expected) {
  if (!check(spec[field])) {
    throw new Error(
      `SPEC field "${field}" is ${JSON.stringify(spec[field])}, ` +
        `expected ${expected}`,
    );
  }
}

function isPositiveInteger(value) {
  return Number.isInteger(value) && value > 0;
}

function isPositiveIntegerList(value) {
  return (
    Array.isArray(value) && value.length > 0 && value.every(isPositiveInteger)
  );
}

// Reads SPEC.json and checks every field that the adapters use.
export function readSpec(specPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));
  const isPath = (value) => typeof value === "string" && value.length > 0;
  requireField(spec, "dim", isPositiveInteger, "a positive integer");
  requireField(
    spec,
    "metric",
    (value) => value === "l2" || value === "cosine",
    '"l2" or "cosine"',
  );
  requireField(spec, "k", isPositiveInteger, "a positive integer");
  requireField(spec, "base", isPath, "a file path");
  requireField(spec, "base_count", isPositiveInteger, "a positive integer");
  requireField(spec, "queries", isPath, "a file path");
  requireField(spec, "query_count", isPositiveInteger, "a positive integer");
  requireField(spec, "ef_search", isPositiveIntegerList, "a list of integers");
  requireField(
    spec,
    "concurrency",
    isPositiveIntegerList,
    "a list of integers",
  );
  requireField(spec, "work_dir", isPath, "a directory path");
  requireField(spec, "m", isPositiveInteger, "a positive integer");
  requireField(
    spec,
    "ef_construction",
    isPositiveInteger,
    "a positive integer",
  );
  return spec;
}

// Reads rows [first, first + count) of a raw little-endian float32 file of
// `dim` columns. Throws when the file is shorter than that or its size is
// not a whole number of rows.
export function readRows(filePath, dim, first, count) {
  const rowBytes = dim * 4;
  const fileBytes = fs.statSync(filePath).size;
  if (fileBytes % rowBytes !== 0 || fileBytes < (first + count) * rowBytes) {
    throw new Error(
      `${filePath} has ${fileBytes} bytes, expected a multiple of ` +
        `${rowBytes} (${dim} float32 per row) with at least ` +
        `${first + count} rows`,
    );
  }
  const buffer = Buffer.alloc(count * rowBytes);
  const fd = fs.openSync(filePath, "r");
  try {
    let done = 0;
    while (done < buffer.length) {
      const read = fs.readSync(
        fd,
        buffer,
        done,
        buffer.length - done,
        first * rowBytes + done,
      );
      if (read === 0) throw new Error(`${filePath}: unexpected end of file`);
      done += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  // Buffer.alloc never takes memory from Node's shared pool, so the buffer
  // starts at offset 0 of its own ArrayBuffer, as Float32Array requires.
  return new Float32Array(buffer.buffer, buffer.byteOffset, count * dim);
}

// Calls `insert(first, rows)` for consecutive batches of the base file,
// reading one batch at a time so that the whole file is never in memory.
export async function forEachBaseBatch(spec, system, insert) {
  let lastReport = elapsedSeconds();
  for (let first = 0; first < spec.base_count; first += INSERT_BATCH_ROWS) {
    const count = Math.min(INSERT_BATCH_ROWS, spec.base_count - first);
    await insert(first, readRows(spec.base, spec.dim, first, count));
    if (elapsedSeconds() - lastReport >= 5) {
      progress(system, `inserted ${first + count} of ${spec.base_count}`);
      lastReport = elapsedSeconds();
    }
  }
}

// Returns the query rows as one Float32Array view per query.
export function readQueries(spec) {
  const all = readRows(spec.queries, spec.dim, 0, spec.query_count);
  const queries = [];
  for (let i = 0; i < spec.query_count; i++) {
    queries.push(all.subarray(i * spec.dim, (i + 1) * spec.dim));
  }
  return queries;
}

// Returns the apparent size in bytes of all files under a directory.
export function directoryBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      total += directoryBytes(entryPath);
    } else if (entry.isFile()) {
      total += fs.statSync(entryPath).size;
    }
  }
  return total;
}

// Returns a process's peak resident set size (VmHWM) in bytes, or null
// when /proc does not show it.
export function peakRssBytes(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = status.match(/^VmHWM:\s+(\d+)\s+kB$/m);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function percentile(sortedValues, fraction) {
  const index = Math.min(
    sortedValues.length - 1,
    Math.ceil(fraction * sortedValues.length) - 1,
  );
  return sortedValues[Math.max(0, index)];
}

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

// Runs every query once, one at a time, after a warm-up, and returns the
// rate and each query's ids. `search(query)` resolves to the ids of the
// query's hits, best first.
export async function runSequential(queries, search) {
  for (const query of queries.slice(0, WARMUP_QUERIES)) await search(query);

  const ids = [];
  const start = nowMs();
  for (const query of queries) ids.push(await search(query));
  const seconds = (nowMs() - start) / 1000;
  return { qps: queries.length / seconds, ids };
}

// Runs the query set once with `clients` concurrent loops, each taking the
// next query that no loop took yet, and returns the latency percentiles
// and the overall rate.
export async function runConcurrent(queries, clients, search) {
  for (const query of queries.slice(0, WARMUP_QUERIES)) await search(query);

  const latencies = [];
  let next = 0;
  const loop = async () => {
    while (next < queries.length) {
      const query = queries[next++];
      const issued = nowMs();
      await search(query);
      latencies.push(nowMs() - issued);
    }
  };
  const start = nowMs();
  await Promise.all(Array.from({ length: clients }, loop));
  const seconds = (nowMs() - start) / 1000;

  latencies.sort((a, b) => a - b);
  return {
    clients,
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
    qps: queries.length / seconds,
  };
}

// Returns the knob value at the middle of a sweep, used for the latency runs.
export function middleOf(values) {
  return values[Math.floor(values.length / 2)];
}

// Runs an adapter's body with the contract's command line and writes
// OUT.json. `body(spec, result)` fills `result`; when it throws, OUT.json
// gets the message in "error" and the process exits 1. `cleanup` runs in
// both cases, before OUT.json is written.
export async function runAdapter(system, body, cleanup) {
  const [specPath, outPath] = process.argv.slice(2);
  if (!specPath || !outPath || process.argv.length !== 4) {
    process.stderr.write(
      `usage: node bench/peers/${system}.mjs SPEC.json OUT.json\n`,
    );
    process.exit(2);
  }

  const result = {
    system,
    version: null,
    index: null,
    ingest_seconds: null,
    disk_bytes: null,
    peak_rss_bytes: null,
    sweep: [],
    latency: [],
    error: null,
  };
  try {
    await body(readSpec(specPath), result);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    progress(system, `failed: ${error?.stack ?? result.error}`);
  }
  try {
    await cleanup();
  } catch (error) {
    progress(system, `cleanup failed: ${error?.stack ?? error}`);
    result.error ??= `cleanup failed: ${error?.message ?? error}`;
  }

  fs.writeFileSync(outPath, JSON.stringify(result) + "\n");
  progress(system, result.error ? "wrote the error to " + outPath : "done");
  process.exit(result.error ? 1 : 0);
}
