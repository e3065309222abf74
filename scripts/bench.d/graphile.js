// graphile.js — scripts/bench's yardstick: graphile-worker (a general-purpose
// PostgreSQL job queue for Node.js) on the same cluster. Enqueues N no-op
// jobs one at a time (as an API enqueues its work), then runs a worker at
// concurrency C until the queue is empty, and prints one JSON object:
// {"jobs", "enqueue_per_s", "process_per_s", "concurrency"}.
//
//   node graphile.js CONNECTION_STRING N C
'use strict';
const {Logger, makeWorkerUtils, run} = require('graphile-worker');

// Quiet: a line per job would cost more than the jobs.
const logger = new Logger(() => () => {});

async function main() {
  const [conn, nArg, cArg] = process.argv.slice(2);
  const n = Number(nArg), concurrency = Number(cArg);
  const utils = await makeWorkerUtils({connectionString: conn, logger});
  await utils.migrate();
  const t0 = process.hrtime.bigint();
  const inflight = [];
  for (let i = 0; i < n; i++) {
    inflight.push(utils.addJob('noop', {i}));
    if (inflight.length >= 8) await inflight.shift();
  }
  await Promise.all(inflight);
  const t1 = process.hrtime.bigint();
  let done = 0;
  const runner = await run({
    connectionString: conn, concurrency, noHandleSignals: true, pollInterval: 100, logger,
    taskList: {noop: async () => { done++; }},
  });
  const t2 = process.hrtime.bigint();
  while (done < n) await new Promise((r) => setTimeout(r, 20));
  const t3 = process.hrtime.bigint();
  await runner.stop();
  await utils.release();
  console.log(JSON.stringify({
    jobs: n, concurrency,
    enqueue_per_s: n / (Number(t1 - t0) / 1e9),
    process_per_s: n / (Number(t3 - t2) / 1e9),
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
