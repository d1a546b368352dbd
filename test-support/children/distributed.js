// One rank of a job for test/distributed.test.ts (started by mpirun, or alone): runs a scenario
// and prints what it saw as one JSON line per rank.
// usage: node distributed.js collectives|throw|timeout|timeoutCaught|nolib
'use strict';
const fs = require('fs');
const ck = require('../../dist');

const report = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const scenario = process.argv[2];


// The last rank lives on (10 minutes) without joining any collective; true on that rank.
async function lastRankStaysAway(comm) {
  if (comm.rank !== comm.size - 1) return false;
  await new Promise((resolve) => setTimeout(resolve, 600000));
  return true;
}
const scenarios = {
  // allreduce and broadcast of values every rank can predict, then a barrier
  async collectives() {
    const comm = await ck.distributed.init({ timeoutMs: 60000 });
    const r = comm.rank;
    const small = ck.tensor([1 * (r + 1), -2 * (r + 1), 0.5 * (r + 1)], [3]);
    const n = 100003;  // more than one segment of MPI's pipelined algorithms
    const big = ck.tensor(Float32Array.from({ length: n }, (_, i) => (i % 7) + r * 1000), [n]);
    const sum = await comm.allreduce(small);
    const bigSum = await comm.allreduce(big);
    // a tensor whose op is still running when the allreduce is called: 9 * 16 ones summed per output
    const queued = ck.ops.conv2d(ck.fill([8, 64, 64, 16], 1), ck.fill([3, 3, 16, 16], 1), { padding: 'valid' });
    const queuedSum = await comm.allreduce(queued);
    const own = ck.tensor([r + 7, r + 8, r + 9, r + 10], [2, 2]);
    const fromLast = await comm.broadcast(own, comm.size - 1);
    const fromFirst = await comm.broadcast(own);
    await comm.barrier();
    report({
      rank: r, size: comm.size, localRank: comm.localRank,
      sum: Array.from(sum.dataSync()), sumShape: sum.shape,
      // elements of the large sum that differ from sum over ranks q of (i % 7) + 1000 q
      bigSumWrong: bigSum.dataSync().filter((v, i) => v !== (i % 7) * comm.size + 500 * comm.size * (comm.size - 1)).length,
      bigSumLength: bigSum.dataSync().length,
      queuedSumWrong: queuedSum.dataSync().filter((v) => v !== 144 * comm.size).length,
      queuedSumLength: queuedSum.dataSync().length,
      smallAfter: Array.from(small.dataSync()),
      fromLast: Array.from(fromLast.dataSync()), fromLastShape: fromLast.shape,
      fromFirst: Array.from(fromFirst.dataSync()),
      ownAfter: Array.from(own.dataSync()),
      mpiLoaded: fs.readFileSync('/proc/self/maps', 'utf8').includes('libmpi.so'),
    });
  },
  // the last rank throws while the others wait in an allreduce it never joins
  async throw() {
    const comm = await ck.distributed.init({ timeoutMs: 600000 });
    if (comm.rank === comm.size - 1) throw new Error(`rank ${comm.rank} failed on purpose`);
    await comm.allreduce(ck.tensor([1], [1]));
  },
  // the last rank stays alive but never joins the allreduce: the others' timeout ends the job
  // (5 s also bounds init, which a loaded CI machine must still finish in time)
  async timeout() {
    const comm = await ck.distributed.init({ timeoutMs: 5000 });
    if (await lastRankStaysAway(comm)) return;
    await comm.allreduce(ck.tensor([1], [1]));
  },
  // as timeout, but the waiting rank catches the errors and carries on to a clean exit
  async timeoutCaught() {
    const comm = await ck.distributed.init({ timeoutMs: 5000 });
    if (await lastRankStaysAway(comm)) return;
    // the barrier is queued behind the allreduce that never finishes
    const [first, second] = await Promise.all([comm.allreduce(ck.tensor([1], [1])), comm.barrier()]
      .map((p) => p.catch((e) => e)));
    const third = await comm.barrier().catch((e) => e);
    const text = (e) => `${e.name}: ${e.message}`;
    report({ rank: comm.rank, first: text(first), second: text(second), third: text(third) });
  },
  // the launcher is there but the library is not (CONVKIT_MPI_LIBRARY names a missing file)
  async nolib() {
    try {
      await ck.distributed.init();
      report({ ok: true });
    } catch (e) {
      report({ ok: false, name: e.name, isDeviceError: e instanceof ck.DeviceError, message: e.message });
    }
  },
};

scenarios[scenario]();
