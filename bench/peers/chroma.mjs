// Benchmark adapter for Chroma's local server, through the chromadb Node.js
// client (the versions that install.sh pins).
//
//   node bench/peers/chroma.mjs SPEC.json OUT.json
//
// Starts `chroma run` from the chromadb package on 127.0.0.1, on a free port
// and with a new data path under the spec's work_dir, and stops it by its
// process id at the end. The server runs in its own Node.js process, which
// hosts Chroma's Rust server through the chromadb-js-bindings package.
// Creates a collection with an HNSW index (space, max_neighbors = m,
// ef_construction from the spec), adds the base vectors with their row
// numbers as ids, and sweeps ef_search by changing the collection's
// configuration between passes.
//
// A running chroma server keeps searching a loaded HNSW index with the
// ef_search it was loaded with, although the collection's configuration
// returns the new value. With server 1.0.0 from the pinned bindings,
// recall@10 on Fashion-MNIST stayed 0.9634 for every ef_search from 16 to
// 256 without restarts. So after each change the adapter restarts the
// server on the same data path, which loads the index with the new value.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import {
  directoryBytes,
  forEachBaseBatch,
  installDir,
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

const SYSTEM = "chroma";
const COLLECTION = "bench";
const HOST = "127.0.0.1";
const SERVER_START_SECONDS = 60;
const SERVER_STOP_SECONDS = 30;

const { ChromaClient } = requirePeer("chromadb");

let workDir = null;
let server = null;
// Highest VmHWM of the server processes started so far, in bytes.
let serverPeakRss = null;

// Returns a TCP port that is free on HOST now. Another process could take
// it before the server binds it, in which case the server fails to start.
function findFreePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

function serverLogTail(logPath) {
  try {
    const lines = fs.readFileSync(logPath, "utf8").trim().split("\n");
    return lines.slice(-5).join("\n");
  } catch {
    return "(no log)";
  }
}

// Starts `chroma run` and resolves once its heartbeat endpoint returns OK.
async function startServer(dataPath, logPath) {
  const port = await findFreePort();
  const cli = path.join(
    installDir,
    "node_modules",
    "chromadb",
    "dist",
    "cli.mjs",
  );
  const log = fs.openSync(logPath, "a");
  const child = spawn(
    process.execPath,
    [cli, "run", "--path", dataPath, "--host", HOST, "--port", String(port)],
    { stdio: ["ignore", log, log] },
  );
  fs.closeSync(log);
  const started = { child, exited: false, port };
  child.on("exit", () => {
    started.exited = true;
  });
  server = started;

  const url = `http://${HOST}:${port}/api/v2/heartbeat`;
  const deadline = Date.now() + SERVER_START_SECONDS * 1000;
  while (Date.now() < deadline) {
    if (server.exited) {
      throw new Error(
        `chroma run exited with code ${child.exitCode} before it served ` +
          `requests; its log ${logPath} ends with:\n${serverLogTail(logPath)}`,
      );
    }
    try {
      const response = await fetch(url);
      if (response.ok) return port;
    } catch {
      // Not listening yet.
    }
    await sleep(200);
  }
  throw new Error(
    `chroma run did not respond to ${url} within ${SERVER_START_SECONDS} s; ` +
      `its log ${logPath} ends with:\n${serverLogTail(logPath)}`,
  );
}

// Stops the server by its process id: SIGTERM, then SIGKILL if it is still
// running after SERVER_STOP_SECONDS. Records its peak RSS first.
async function stopServer() {
  if (server === null || server.exited) return;
  const peak = peakRssBytes(server.child.pid);
  if (peak !== null) serverPeakRss = Math.max(serverPeakRss ?? 0, peak);
  const { child } = server;
  const exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", resolve);
  });
  child.kill("SIGTERM");
  const timedOut = await Promise.race([
    exited.then(() => false),
    sleep(SERVER_STOP_SECONDS * 1000).then(() => true),
  ]);
  if (timedOut) {
    progress(SYSTEM, `server ${child.pid} ignored SIGTERM; killing it`);
    child.kill("SIGKILL");
    await exited;
  }
}

async function load(spec, client) {
  const collection = await client.createCollection({
    name: COLLECTION,
    embeddingFunction: null,
    configuration: {
      hnsw: {
        space: spec.metric,
        max_neighbors: spec.m,
        ef_construction: spec.ef_construction,
        ef_search: spec.ef_search[0],
      },
    },
  });
  const maxBatchSize = await client.getMaxBatchSize();

  await forEachBaseBatch(spec, SYSTEM, async (first, vectors) => {
    const count = vectors.length / spec.dim;
    // The server's limit on records per request may be below the batch.
    const step = maxBatchSize > 0 ? Math.min(count, maxBatchSize) : count;
    for (let start = 0; start < count; start += step) {
      const end = Math.min(count, start + step);
      const ids = [];
      const embeddings = [];
      for (let row = start; row < end; row++) {
        ids.push(String(first + row));
        embeddings.push(
          Array.from(vectors.subarray(row * spec.dim, (row + 1) * spec.dim)),
        );
      }
      await collection.add({ ids, embeddings });
    }
  });

  const count = await collection.count();
  if (count !== spec.base_count) {
    throw new Error(
      `the collection has ${count} records, expected ${spec.base_count}`,
    );
  }
  return collection;
}

// Sets the collection's ef_search, restarts the server so that the index
// is loaded with it, and resolves to the collection on the new server.
async function setEfSearch(collection, ef, dataPath, logPath) {
  await collection.modify({ configuration: { hnsw: { ef_search: ef } } });
  await stopServer();
  const port = await startServer(dataPath, logPath);
  const client = new ChromaClient({ host: HOST, port });
  const reloaded = await client.getCollection({ name: COLLECTION });
  const storedEf = reloaded.configuration?.hnsw?.ef_search;
  if (storedEf !== ef) {
    throw new Error(`ef_search is ${storedEf} after setting it to ${ef}`);
  }
  return reloaded;
}

function searcher(spec, collection) {
  return async (query) => {
    const result = await collection.query({
      queryEmbeddings: [Array.from(query)],
      nResults: spec.k,
      include: ["distances"],
    });
    return result.ids[0].map(Number);
  };
}

async function benchmark(spec, result) {
  result.version =
    `chromadb ${peerVersion("chromadb")}, chromadb-js-bindings-linux-x64-gnu ` +
    peerVersion("chromadb-js-bindings-linux-x64-gnu");
  result.index =
    `HNSW (space ${spec.metric}, max_neighbors ${spec.m}, ef_construction ` +
    `${spec.ef_construction}); the sweep sets ef_search through the ` +
    "collection's configuration and restarts the server, which only " +
    "applies a new ef_search when it loads the index; concurrency is that " +
    "many async query loops in the client process, each sending HTTP " +
    "requests to one local chroma server";

  fs.mkdirSync(spec.work_dir, { recursive: true });
  workDir = fs.mkdtempSync(path.join(spec.work_dir, "chroma-"));
  const dataPath = path.join(workDir, "data");
  const logPath = path.join(workDir, "server.log");

  progress(SYSTEM, `starting chroma run with data path ${dataPath}`);
  const port = await startServer(dataPath, logPath);
  const client = new ChromaClient({ host: HOST, port });
  result.version += `, server ${await client.version()}`;
  progress(SYSTEM, `server ${server.child.pid} listens on ${HOST}:${port}`);

  progress(SYSTEM, `adding ${spec.base_count} vectors`);
  const ingestStart = process.hrtime.bigint();
  const collection = await load(spec, client);
  result.ingest_seconds =
    Number(process.hrtime.bigint() - ingestStart) / 1e9;
  result.disk_bytes = directoryBytes(dataPath);
  progress(SYSTEM, `ingest took ${result.ingest_seconds.toFixed(1)} s`);

  const queries = readQueries(spec);
  let current = collection;
  for (const ef of spec.ef_search) {
    progress(SYSTEM, `restarting the server with ef_search ${ef}`);
    current = await setEfSearch(current, ef, dataPath, logPath);
    progress(SYSTEM, `searching ${queries.length} queries, ef_search ${ef}`);
    const run = await runSequential(queries, searcher(spec, current));
    result.sweep.push({ param: `ef_search ${ef}`, qps: run.qps, ids: run.ids });
  }

  const latencyEf = middleOf(spec.ef_search);
  progress(SYSTEM, `restarting the server with ef_search ${latencyEf}`);
  current = await setEfSearch(current, latencyEf, dataPath, logPath);
  for (const clients of spec.concurrency) {
    progress(SYSTEM, `latency with ${clients} concurrent clients`);
    result.latency.push(
      await runConcurrent(queries, clients, searcher(spec, current)),
    );
  }
  await stopServer();
  result.peak_rss_bytes = serverPeakRss;
}

async function cleanup() {
  await stopServer();
  if (workDir !== null) fs.rmSync(workDir, { recursive: true, force: true });
}

// A harness that stops the adapter with a signal must not leave the server
// running: stop it by its pid and exit with the shell's code for the signal.
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]]) {
  process.once(signal, () => {
    if (server !== null && !server.exited) {
      process.kill(server.child.pid, "SIGTERM");
    }
    if (workDir !== null) fs.rmSync(workDir, { recursive: true, force: true });
    process.exit(code);
  });
}

await runAdapter(SYSTEM, benchmark, cleanup);
