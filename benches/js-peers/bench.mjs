// The js bench's node peers: piscina and tinypool, one worker thread each,
// running worker.mjs (`([a, b]) => a + b`). Each system has two pools: one
// with its default options for round trips, and one that lets a worker take
// up to 1000 tasks at once (`concurrentTasksPerWorker: 1000`, its best case
// for batches: the default of 1 sends each task only when the last is done).
//
//   node bench.mjs --serve   what the Rust bench (benches/js.rs) spawns: one
//                            JSON line on stdout when ready, then one command
//                            per stdin line, each answered by a JSON line:
//                              rt SYSTEM N            N calls, each awaited before the next
//                              batch SYSTEM N SIZE    N calls, SIZE in flight at once (Promise.all)
//                              quit
//                            answers {"ns": time of the N calls} or {"error": "..."}.
//   node bench.mjs           a standalone run: medians of a few rounds, as JSON.
//
// Run from the folder where `npm ci` installed the pinned package-lock.json
// (./run.sh copies this folder to .cache/js-peers/ and installs it there).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const worker = new URL('./worker.mjs', import.meta.url).href;

async function start() {
  const { Piscina } = await import('piscina');
  const { Tinypool } = await import('tinypool');
  const one = { filename: worker, minThreads: 1, maxThreads: 1 };
  const many = { ...one, concurrentTasksPerWorker: 1000 };
  const pools = {
    piscina: { rt: new Piscina(one), batch: new Piscina(many) },
    tinypool: { rt: new Tinypool(one), batch: new Tinypool(many) },
  };
  const version = (name) => {
    const manifest = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(manifest, 'utf8')).version;
  };
  const versions = { piscina: version('piscina'), tinypool: version('tinypool') };
  // Warm both (worker started, module loaded, JIT past its first tier).
  for (const { rt, batch } of Object.values(pools)) {
    for (let i = 0; i < 2000; i++) await rt.run([1, 2]);
    await batches(batch, 5000, 1000);
  }
  return { pools, versions };
}

async function roundTrips(pool, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = await pool.run([i, 2]);
    if (r !== i + 2) throw new Error(`wrong result ${r}`);
  }
  return Number(process.hrtime.bigint() - start);
}

async function batches(pool, n, size) {
  const calls = new Array(size);
  const start = process.hrtime.bigint();
  for (let done = 0; done < n; done += size) {
    for (let j = 0; j < size; j++) calls[j] = pool.run([j, 2]);
    const results = await Promise.all(calls);
    if (results[size - 1] !== size + 1) throw new Error('wrong result');
  }
  return Number(process.hrtime.bigint() - start);
}

async function stop(pools) {
  for (const { rt, batch } of Object.values(pools)) {
    await rt.destroy();
    await batch.destroy();
  }
}

async function serve() {
  const { pools, versions } = await start();
  const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
  out({ ready: true, node: process.version, versions });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, system, n, size] = line.trim().split(/\s+/);
    if (cmd === 'quit' || cmd === '') break;
    const pool = pools[system];
    try {
      if (!pool) throw new Error(`unknown system ${system}`);
      if (cmd === 'rt') out({ ns: await roundTrips(pool.rt, Number(n)) });
      else if (cmd === 'batch') out({ ns: await batches(pool.batch, Number(n), Number(size)) });
      else throw new Error(`unknown command ${cmd}`);
    } catch (e) {
      out({ error: String(e) });
    }
  }
  lines.close();
  await stop(pools);
  process.exit(0);
}

async function standalone() {
  const { pools, versions } = await start();
  const median = (v) => v.sort((a, b) => a - b)[v.length >> 1];
  const report = { node: process.version, versions, ns_per_call: {} };
  for (const [name, pool] of Object.entries(pools)) {
    const rt = [];
    const batch = [];
    for (let round = 0; round < 5; round++) {
      rt.push((await roundTrips(pool.rt, 5000)) / 5000);
      batch.push((await batches(pool.batch, 20000, 1000)) / 20000);
    }
    report.ns_per_call[name] = { round_trip: median(rt), batch_1000: median(batch) };
  }
  console.log(JSON.stringify(report, null, 2));
  await stop(pools);
}

await (process.argv.includes('--serve') ? serve() : standalone());
