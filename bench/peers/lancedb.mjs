// Benchmark adapter for LanceDB, embedded in this Node.js process through
// @lancedb/lancedb (the version that install.sh pins).
//
//   node bench/peers/lancedb.mjs SPEC.json OUT.json
//
// Loads the base vectors into a table of (id Int32, vector
// FixedSizeList<Float32>) in a new directory under the spec's work_dir,
// builds an IVF_HNSW_SQ index with one partition (an HNSW graph over 8-bit
// scalar-quantized vectors, the graph index LanceDB offers) with the spec's
// m, ef_construction and metric, and sweeps the query-time ef over the
// spec's ef_search values, each with a refine factor (see refineFactor()).
// Sets of fewer than MIN_INDEXED_ROWS rows get no index and one exact pass.

import fs from "node:fs";
import path from "node:path";

import {
  directoryBytes,
  forEachBaseBatch,
  middleOf,
  peakRssBytes,
  peerVersion,
  progress,
  readQueries,
  requirePeer,
  runAdapter,
  runConcurrent,
  runSequential,
} from "./common.mjs";

const SYSTEM = "lancedb";
const TABLE = "bench";

// Below this many rows a user would not build an index: an exact scan is
// fast, and the quantizer has too few rows to learn from.
const MIN_INDEXED_ROWS = 1000;

const lancedb = requirePeer("@lancedb/lancedb");
const arrow = requirePeer("apache-arrow");

let dataDir = null;
let connection = null;

// Wraps `count` rows of `dim` floats, with ids from `first`, in an Arrow
// table without copying the floats.
function makeBatch(first, vectors, dim) {
  const count = vectors.length / dim;
  const ids = new Int32Array(count);
  for (let i = 0; i < count; i++) ids[i] = first + i;

  const floatType = new arrow.Float32();
  const vectorType = new arrow.FixedSizeList(
    dim,
    new arrow.Field("item", floatType, true),
  );
  const floats = arrow.makeData({
    type: floatType,
    length: vectors.length,
    data: vectors,
  });
  const vectorData = arrow.makeData({
    type: vectorType,
    length: count,
    nullCount: 0,
    child: floats,
  });
  const idData = arrow.makeData({
    type: new arrow.Int32(),
    length: count,
    data: ids,
  });
  return new arrow.Table({
    id: arrow.makeVector(idData),
    vector: arrow.makeVector(vectorData),
  });
}

async function load(spec) {
  let table = null;
  await forEachBaseBatch(spec, SYSTEM, async (first, vectors) => {
    const batch = makeBatch(first, vectors, spec.dim);
    if (table === null) {
      table = await connection.createTable(TABLE, batch, { mode: "create" });
    } else {
      await table.add(batch);
    }
  });
  const rows = await table.countRows();
  if (rows !== spec.base_count) {
    throw new Error(`the table has ${rows} rows, expected ${spec.base_count}`);
  }
  return table;
}

async function buildIndex(spec, table) {
  const config = lancedb.Index.hnswSq({
    distanceType: spec.metric,
    numPartitions: 1,
    m: spec.m,
    efConstruction: spec.ef_construction,
  });
  await table.createIndex("vector", { config });
}

// Returns the refine factor that goes with an ef: the graph search's
// candidates, compared by their quantized vectors, are ranked again with
// the full vectors, as many as ef allows. LanceDB requires ef >= k * factor.
// Without this step the 8-bit quantization capped recall@10 at 0.958 for
// every ef from 64 to 256 on 5,000 clustered 32-dimensional test vectors.
function refineFactor(spec, ef) {
  return Math.max(1, Math.floor(ef / spec.k));
}

// Returns the sweep's name for a knob value: null is the exact scan.
function knobName(spec, ef) {
  if (ef === null) return "exact scan";
  return `ef ${ef}, refine_factor ${refineFactor(spec, ef)}`;
}

// Returns a function that searches with one setting of the knob and
// resolves to the hits' ids, best first. Naming _distance in select() keeps
// LanceDB from warning on every query that it adds the column anyway.
function searcher(spec, table, ef) {
  return async (query) => {
    let search = table
      .vectorSearch(query)
      .distanceType(spec.metric)
      .select(["id", "_distance"])
      .limit(spec.k);
    if (ef === null) {
      search = search.bypassVectorIndex();
    } else {
      search = search
        .ef(Math.max(ef, spec.k))
        .refineFactor(refineFactor(spec, ef));
    }
    const rows = await search.toArray();
    return rows.map((row) => row.id);
  };
}

async function benchmark(spec, result) {
  result.version = peerVersion("@lancedb/lancedb");
  const indexed = spec.base_count >= MIN_INDEXED_ROWS;
  const concurrency =
    "concurrency is that many async query loops on one embedded table in " +
    "one Node.js process, run by LanceDB's native threads";
  result.index = indexed
    ? `IVF_HNSW_SQ (1 partition, m ${spec.m}, ef_construction ` +
      `${spec.ef_construction}, distance ${spec.metric}); the sweep sets ` +
      "the query's ef and refine_factor floor(ef / k), which ranks the " +
      `graph's candidates again with full vectors; ${concurrency}`
    : `none: exact scan of ${spec.base_count} rows (fewer than ` +
      `${MIN_INDEXED_ROWS}), distance ${spec.metric}; ${concurrency}`;

  fs.mkdirSync(spec.work_dir, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(spec.work_dir, "lancedb-"));
  connection = await lancedb.connect(dataDir);

  progress(SYSTEM, `loading ${spec.base_count} vectors into ${dataDir}`);
  const ingestStart = process.hrtime.bigint();
  const table = await load(spec);
  if (indexed) {
    progress(SYSTEM, "building the IVF_HNSW_SQ index");
    await buildIndex(spec, table);
  }
  result.ingest_seconds =
    Number(process.hrtime.bigint() - ingestStart) / 1e9;
  result.disk_bytes = directoryBytes(dataDir);
  progress(SYSTEM, `ingest took ${result.ingest_seconds.toFixed(1)} s`);

  const queries = readQueries(spec);
  const knobs = indexed ? spec.ef_search : [null];
  for (const ef of knobs) {
    const param = knobName(spec, ef);
    progress(SYSTEM, `searching ${queries.length} queries with ${param}`);
    const run = await runSequential(queries, searcher(spec, table, ef));
    result.sweep.push({ param, qps: run.qps, ids: run.ids });
  }

  const latencyEf = indexed ? middleOf(spec.ef_search) : null;
  for (const clients of spec.concurrency) {
    progress(SYSTEM, `latency with ${clients} concurrent clients`);
    result.latency.push(
      await runConcurrent(queries, clients, searcher(spec, table, latencyEf)),
    );
  }
  result.peak_rss_bytes = peakRssBytes("self");
}

async function cleanup() {
  connection?.close();
  if (dataDir !== null) fs.rmSync(dataDir, { recursive: true, force: true });
}

await runAdapter(SYSTEM, benchmark, cleanup);
