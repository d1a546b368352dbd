// Data-parallel fit over the ranks of an MPI job (fit's `distributed` option). Every rank holds
// the whole model and trains its contiguous share of each global batch; the native step sums the
// gradients over the ranks (MPI_Allreduce on the communication thread, native/addon/addon_mpi.cpp,
// in buckets that start during backward, native/core/net_buckets.cpp) before the update, with the loss averaged over the global batch, so every rank
// applies the same update and the weights stay bitwise equal. With syncBatchNorm the batch norms
// also sum their statistics over the ranks in each step (native/core/layers/norm.cpp), so that
// they normalize as one process on the global batch would. Here: the check that the ranks
// agree, rank 0's weights and optimizer state given to all, each rank's rows, the epoch's
// reduction of the sums every rank logs, and failing together.
//
// Faults: every step, every epoch's end and (fitDataset) every step's row count is a sync point
// at which the ranks first exchange their status (two floats per rank: failed, and a value). A
// rank whose work failed says so at the next sync point the others reach (its step's own, or,
// for a failure in JS, one it joins after its queued steps), and there no rank applies the step:
// the failing rank throws its own error, the others a DistributedError with its message. No rank
// waits for the timeout.
import { Communicator, jobOf } from '../distributed';
import { describeValue, DistributedError, ValueError } from '../errors';
import { native, NativeNet, StepSums } from '../native';
import { fnv1a } from '../rng';
import { Tensor } from '../tensor';

/** Something every rank must agree on before training, as this rank has it. */
export interface FingerprintField {
  /** What the message calls it (batchSize, the model's layers and weight shapes, ...). */
  name: string;
  /** Numbers (integers in [0, 2^48)) are compared and shown as they are; text by a 48-bit hash. */
  value: number | string | undefined;
}

// A float32 holds every integer below 2^24 exactly: each field travels as two such halves.
const HALF = 2 ** 24;
const NONE = 2 ** 48 - 1;  // an undefined value (no seed given)

function code(v: FingerprintField['value']): number {
  if (v === undefined) return NONE;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < NONE) return v;
  const text = String(v);
  return fnv1a(text) * 2 ** 16 + (fnv1a(`#${text}`) >>> 16);
}

function ranksText(ranks: number[]): string {
  if (ranks.length === 1) return `rank ${ranks[0]}`;
  return `ranks ${ranks.slice(0, -1).join(', ')} and ${ranks[ranks.length - 1]}`;
}

/** 'rank 0 has 8, rank 1 has 6' (numbers) or 'ranks 0 and 2 have one, rank 1 another'. */
function disagreement(codes: number[], numeric: boolean): string {
  const groups = new Map<number, number[]>();
  codes.forEach((c, r) => groups.set(c, [...(groups.get(c) ?? []), r]));
  return [...groups.entries()].map(([c, ranks], i) => {
    const has = ranks.length === 1 ? 'has' : 'have';
    const what = numeric ? (c === NONE ? 'none' : String(c)) : i === 0 ? 'one' : 'another';
    return `${ranksText(ranks)} ${has} ${what}`;
  }).join(', ');
}

/** fit's and fitDataset's syncBatchNorm: a boolean, true only with `distributed`. */
export function checkSyncBatchNorm(sync: unknown, distributed: unknown, where: string): void {
  if (sync === undefined) return;
  if (typeof sync !== 'boolean') throw new ValueError(`${where}: syncBatchNorm must be a boolean, got ${describeValue(sync)}`);
  if (sync && distributed === undefined) throw new ValueError(`${where}: syncBatchNorm sums the batch norms' statistics over the ranks of a data-parallel fit; give it with distributed`);
}

/** A job's data-parallel fit, from the check at its start to its end. */
export class DataParallel {
  /** Whether every rank already heard of a failure (a step or sync point rejected). */
  private stopped = false;
  /** The steps queued and not yet settled. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * Sync batch norm: whether this rank took a step of the epoch without rows. Its batch norms
   * then missed that step's update of their moving statistics, which the ranks that had rows in
   * every step all made alike.
   */
  private missedStep = false;

  /** `syncAhead`: whether the other ranks reach another sync point in this fit. */
  private constructor(private readonly comm: Communicator, private readonly net: NativeNet,
    private readonly outputs: number, private readonly metricSums: number, private readonly timeoutMs: number,
    private readonly where: string, private syncAhead: boolean, private readonly syncBatchNorm: boolean) {}

  get rank(): number {
    return this.comm.rank;
  }

  /**
   * Checks that every rank has the same `fields` (a DistributedError on every rank naming those
   * that differ), then gives every rank rank 0's weights, optimizer state, step count and seed,
   * and routes the net's data-parallel steps through MPI (`syncBatchNorm`: their batch norms'
   * statistics too). Resolves to the seed all ranks use: rank 0's, or one it draws when fit was
   * given none.
   */
  static async start(net: NativeNet, comm: Communicator, timeoutMs: number, outputs: number, metricSums: number,
    fields: FingerprintField[], seed: number | undefined, where: string, trainsAnEpoch: boolean,
    syncBatchNorm: boolean): Promise<{ dp: DataParallel; seed: number }> {
    // The fingerprint exchange is a sync point: a rank whose fit rejected its own arguments
    // joins it (refuse) with its message, and every rank stops there.
    const { failed } = await native.mpiSync(null, 0, timeoutMs);
    if (failed !== null) throw new DistributedError(`${where}: every rank stopped before training, because ${failed}`);
    const job = jobOf(comm, where)!;
    await checkAgreement(comm, [...fields, { name: 'distributed.init\'s orderedSum', value: job.orderedSum ? 1 : 0 }], job.timeoutMs, where);
    const dp = new DataParallel(comm, net, outputs, metricSums, timeoutMs, where, trainsAnEpoch, syncBatchNorm);
    // Rng takes a seed as seed >>> 0: the same number travels exactly in two float32 halves.
    const agreedSeed = await dp.shareState(seed === undefined ? Math.floor(Math.random() * 2 ** 32) : seed >>> 0);
    net.setDistributed(timeoutMs, job.bucketFloats, syncBatchNorm, job.orderedSum);
    return { dp, seed: agreedSeed };
  }

  /**
   * Called with the error of a fit whose arguments this rank rejected before the ranks'
   * fingerprint exchange, with fit's `distributed` option: when that is an MPI communicator, the
   * other ranks hear of it at that exchange (start) and fail with its message instead of waiting
   * for this rank until the timeout.
   */
  static async refuse(distributed: unknown, error: unknown): Promise<void> {
    let job: ReturnType<typeof jobOf> = null;
    try {
      job = distributed === undefined ? null : jobOf(distributed, '');
    } catch {
      return;  // not a communicator: there is no job to tell
    }
    if (!job) return;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    // This rank fails with its own error either way; a timeout here is the other ranks' fault.
    await native.mpiSync(message, 0, job.timeoutMs).catch(() => undefined);
  }

  /**
   * A step's promise: its rejection means every rank heard of the failure at that step (the
   * native step exchanges its status, also when its own part failed), so the ranks' DistributedError
   * gets fit's name.
   */
  step<T>(p: Promise<T>): Promise<T> {
    const step = p.then((v) => v, (e: unknown) => {
      this.stopped = true;
      throw e instanceof DistributedError ? new DistributedError(`${this.where}: ${e.message}`) : e;
    }).finally(() => this.inFlight.delete(step));
    this.inFlight.add(step);
    return step;
  }

  /**
   * Called with an error that fit hit on this rank (a callback, a step that could not be queued,
   * a failed step): once the steps already queued have settled, tells the other ranks at their
   * next sync point unless they already know or have none left, so that they fail with its
   * message instead of waiting for this rank until the timeout.
   */
  async fail(error: unknown): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    if (this.stopped || !this.syncAhead) return;
    this.stopped = true;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    // This rank fails with its own error either way; a timeout here is the other ranks' fault.
    await native.mpiSync(message, 0, this.timeoutMs).catch(() => undefined);
  }

  /**
   * A sync point before a step of fitDataset: every rank's `rows` (those of its next batch, 0 when
   * its dataset has ended), or a DistributedError when a rank failed since the last one.
   */
  async agree(rows: number): Promise<number[]> {
    const { failed, values } = await native.mpiSync(null, rows, this.timeoutMs);
    if (failed !== null) {
      this.stopped = true;
      throw new DistributedError(`${this.where}: every rank stopped before the same step, because ${failed}`);
    }
    if (rows === 0 && values.some((v) => v > 0)) this.missedStep = true;
    return values;
  }

  /** Stops routing the steps through MPI (fit's end, also when it failed). */
  end(): void {
    this.net.setDistributed(null);
  }

  /**
   * This rank's rows of a global batch and where they start in it: a contiguous slice, the batch
   * split as evenly as it goes (a batch with fewer rows than ranks leaves some ranks none: they
   * still take the step).
   */
  share(batch: Int32Array): { rows: Int32Array; first: number } {
    const { rank, size } = this.comm;
    const n = batch.length;
    const first = Math.floor((rank * n) / size);
    const end = Math.floor(((rank + 1) * n) / size);
    if (end === first) this.missedStep = true;
    return { rows: batch.subarray(first, end), first };
  }

  /**
   * The epoch's sums over every rank, and whether any rank asked to stop; the batch norms'
   * moving statistics become their mean over the ranks (each rank saw only its own rows), or
   * with syncBatchNorm over the ranks that had rows in every step (they hold the same ones, those
   * of one process on the global batches; the rank that had the most rows always is one). A sync
   * point: a DistributedError when a rank failed since the last step. `last`: fit's last epoch.
   */
  async endEpoch(sums: StepSums, stop: boolean, last: boolean): Promise<{ sums: StepSums; stop: boolean }> {
    const { failed } = await native.mpiSync(null, 0, this.timeoutMs);
    if (failed !== null) {
      this.stopped = true;
      throw new DistributedError(`${this.where}: every rank stopped at the end of the epoch, because ${failed}`);
    }
    const o = this.outputs;
    const state = this.net.params().map((p, i) => ({ ...p, index: i })).filter((p) => !p.trainable);
    const stats = state.map((p) => new Tensor(this.net.getParam(p.index)).dataSync());
    const m = this.metricSums;
    const head = 3 + 2 * o + m + 2;  // ..., stop, how many ranks' moving statistics count
    const packed = new Float32Array(head + stats.reduce((n, s) => n + s.length, 0));
    packed.set([sums.lossSum, sums.correct, sums.count]);
    for (let k = 0; k < o; k++) {
      packed[3 + k] = sums.outputLoss[k] ?? 0;  // a rank that had no rows yet has no per-output sums
      packed[3 + o + k] = sums.outputCorrect[k] ?? 0;
    }
    for (let k = 0; k < m; k++) packed[3 + 2 * o + k] = sums.metricSums[k] ?? 0;
    packed[head - 2] = stop ? 1 : 0;
    const counts = !(this.syncBatchNorm && this.missedStep);
    this.missedStep = false;
    packed[head - 1] = counts ? 1 : 0;
    let at = head;
    for (const s of stats) {
      if (counts) packed.set(s, at);
      at += s.length;
    }
    const total = (await this.comm.allreduce(new Tensor(native.fromArray(packed, [packed.length])))).dataSync();
    this.syncAhead = !last && !(total[head - 2] > 0);
    at = head;
    state.forEach((p, k) => {
      const mean = total.slice(at, at + stats[k].length).map((v) => v / total[head - 1]);
      at += stats[k].length;
      this.net.setParam(p.index, native.fromArray(mean, p.shape));
    });
    return {
      sums: {
        lossSum: total[0], correct: total[1], count: total[2],
        outputLoss: Array.from(total.subarray(3, 3 + o)), outputCorrect: Array.from(total.subarray(3 + o, 3 + 2 * o)),
        metricSums: Array.from(total.subarray(3 + 2 * o, 3 + 2 * o + m)),
      },
      stop: total[head - 2] > 0,
    };
  }

  /** Every rank takes rank 0's weights, optimizer state and step count; resolves to rank 0's `seed`. */
  private async shareState(seed: number): Promise<number> {
    const net = this.net;
    const params = net.params();
    const weights = params.map((_, i) => new Tensor(net.getParam(i)).dataSync());
    const optimizer = net.getOptimizerState().map((h) => new Tensor(h).dataSync());
    const iterations = await net.iterations();
    const head = [Math.floor(iterations / HALF), iterations % HALF, Math.floor(seed / HALF), seed % HALF];
    const parts = [Float32Array.from(head), ...weights, ...optimizer];
    const packed = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      packed.set(p, at);
      at += p.length;
    }
    const got = (await this.comm.broadcast(new Tensor(native.fromArray(packed, [packed.length])), 0)).dataSync();
    at = head.length;
    const take = (n: number) => got.slice(at, (at += n));
    params.forEach((p, i) => net.setParam(i, native.fromArray(take(weights[i].length), p.shape)));
    const state = optimizer.map((s) => native.fromArray(take(s.length), [s.length]));
    net.setOptimizerState(state, got[0] * HALF + got[1]);
    return got[2] * HALF + got[3];
  }
}

/**
 * Every rank's fingerprint, all-reduced as a table (rank r fills row r), so that every rank
 * sees who differs on what and all throw the same DistributedError (none waits for another).
 * Summed by MPI_Allreduce on every rank, also where the communicator sums in rank order
 * (orderedSum, one of the fields: ranks that disagree on it make the same call here).
 */
async function checkAgreement(comm: Communicator, fields: FingerprintField[], timeoutMs: number, where: string): Promise<void> {
  const width = 2 * fields.length;
  const table = new Float32Array(comm.size * width);
  fields.forEach((f, k) => {
    const c = code(f.value);
    table[comm.rank * width + 2 * k] = Math.floor(c / HALF);
    table[comm.rank * width + 2 * k + 1] = c % HALF;
  });
  const all = new Tensor((await native.mpiAllreduce(native.fromArray(table, [table.length]), timeoutMs, false, false))!).dataSync();
  const problems: string[] = [];
  fields.forEach((f, k) => {
    const codes = Array.from({ length: comm.size }, (_, r) => all[r * width + 2 * k] * HALF + all[r * width + 2 * k + 1]);
    if (codes.every((c) => c === codes[0])) return;
    const numeric = typeof f.value === 'number' || f.value === undefined;
    problems.push(`${f.name}: ${disagreement(codes, numeric)}`);
  });
  if (problems.length) {
    throw new DistributedError(`${where}: the ranks disagree on ${problems.join('; ')} (every rank must run fit with the same model, optimizer and arguments on data of the same length)`);
  }
}
