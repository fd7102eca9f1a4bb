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
// spec's ef_search values, each also with a refine factor (see
// sweepSettings()).
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

// Below this many rows an exact scan is fast, so a user would not build
// an index.
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

// Returns the sweep's settings: each ef alone, as LanceDB searches by
// default, and again with refine_factor floor(ef / k) where that is above 1.
// Refining ranks k * refine_factor candidates again by their full vectors
// (LanceDB requires ef >= k * refine_factor). The 8-bit quantization alone
// capped recall@10 at 0.958 for every ef from 64 to 256 on 5,000 clustered
// 32-dimensional test vectors, and refining reached 1.0. null stands for
// the exact scan.
function sweepSettings(spec, indexed) {
  if (!indexed) return [null];
  const settings = [];
  for (const ef of spec.ef_search) {
    settings.push({ ef, refineFactor: null });
    const refineFactor = Math.floor(ef / spec.k);
    if (refineFactor > 1) settings.push({ ef, refineFactor });
  }
  return settings;
}

function settingName(setting) {
  if (setting === null) return "exact scan";
  if (setting.refineFactor === null) return `ef ${setting.ef}`;
  return `ef ${setting.ef}, refine_factor ${setting.refineFactor}`;
}

// Returns a function that searches with one setting and resolves to the
// hits' ids, best first. Naming _distance in select() keeps LanceDB from
// warning on every query that it adds the column anyway.
function searcher(spec, table, setting) {
  return async (query) => {
    let search = table
      .vectorSearch(query)
      .distanceType(spec.metric)
      .select(["id", "_distance"])
      .limit(spec.k);
    if (setting === null) {
      search = search.bypassVectorIndex();
    } else {
      search = search.ef(Math.max(setting.ef, spec.k));
      if (setting.refineFactor !== null) {
        search = search.refineFactor(setting.refineFactor);
      }
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
      "the query's ef, alone and with refine_factor floor(ef / k) where " +
      "that is above 1, which ranks the graph's candidates again with full " +
      `vectors; latency uses the middle ef alone; ${concurrency}`
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
  for (const setting of sweepSettings(spec, indexed)) {
    const param = settingName(setting);
    progress(SYSTEM, `searching ${queries.length} queries with ${param}`);
    const run = await runSequential(queries, searcher(spec, table, setting));
    result.sweep.push({ param, qps: run.qps, ids: run.ids });
  }

  const latencySetting = indexed
    ? { ef: middleOf(spec.ef_search), refineFactor: null }
    : null;
  const search = searcher(spec, table, latencySetting);
  for (const clients of spec.concurrency) {
    progress(SYSTEM, `latency with ${clients} concurrent clients`);
    result.latency.push(await runConcurrent(queries, clients, search));
  }
  result.peak_rss_bytes = peakRssBytes("self");
}

async function cleanup() {
  connection?.close();
  if (dataDir !== null) fs.rmSync(dataDir, { recursive: true, force: true });
}

await runAdapter(SYSTEM, benchmark, cleanup);
