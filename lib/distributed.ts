// ck.distributed: the communicator of a job of several processes (ranks) started by an MPI
// launcher (mpirun, srun, an MPIJob's launcher). The addon loads Open MPI at run time, so convkit
// runs without MPI installed; outside a launcher init() returns rank 0 of 1 and loads nothing.
import { DeviceError, describeValue, ValueError } from './errors';
import { native } from './native';
import { checkTensor, Tensor } from './tensor';

export interface DistributedOptions {
  /**
   * How long init and each collective may wait for the other ranks, in milliseconds (default 30
   * minutes). A call past it rejects with a DeviceError and the communicator is unusable from then
   * on: an unhandled rejection exits the process non-zero, and the launcher then ends every rank.
   */
  timeoutMs?: number;
  /**
   * The size of the buckets a data-parallel fit sums its gradients in, in MiB (default 25, as
   * PyTorch's DistributedDataParallel's bucket_cap_mb). Summing a bucket starts as soon as
   * backward has finished the layers whose gradients lie in it, the last layers' first, while
   * backward goes on: smaller buckets start sooner, larger ones make fewer MPI calls. The
   * gradients are cut between layers, so a bucket holds whole layers, one larger than this alone.
   */
  bucketCapMb?: number;
  /**
   * A test and debugging mode (default false): every sum of a data-parallel fit (the gradients,
   * syncBatchNorm's statistics, the epoch's logs) and of allreduce adds the ranks' floats in rank
   * order, ((rank 0 + rank 1) + rank 2) + ..., instead of in the order MPI_Allreduce picks: each
   * rank gathers every rank's floats (MPI_Allgather) and adds them itself, for size times the
   * traffic and memory. A fit on n ranks then gives the weights, bit for bit, of one process
   * fitting with `gradientSlices: n` (which sums the gradients of the same slices in the same
   * order), for models without batch norm. Every rank must pass the same value (fit checks).
   */
  orderedSum?: boolean;
}

/**
 * The ranks of a job. The collectives are asynchronous (MPI runs on a communication thread,
 * never on the JS thread) and every rank must call the same collectives, with tensors of the same
 * shape, in the same order. Their inputs are host tensors, left unchanged; each returns a new one.
 */
export interface Communicator {
  /** This process's index in the job, 0 .. size-1. */
  readonly rank: number;
  /** The number of processes in the job. */
  readonly size: number;
  /** This process's index among the job's processes on the same machine. */
  readonly localRank: number;
  /**
   * The element-wise sum of `x` over every rank, as a new tensor; with `{ inPlace: true }` (as
   * PyTorch's all_reduce) written into `x` itself and `x` returned, which saves the new tensor's
   * allocation (most of the cost for large buffers).
   */
  allreduce(x: Tensor, options?: { inPlace?: boolean }): Promise<Tensor>;
  /** Rank `root`'s `x`, on every rank (the others' `x` gives only the shape). */
  broadcast(x: Tensor, root?: number): Promise<Tensor>;
  /** Resolves once every rank has called it. */
  barrier(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
const DEFAULT_BUCKET_CAP_MB = 25;

/** Whether an MPI launcher started this process (Open MPI's mpirun, a PMIx or PMI launcher). */
export function underLauncher(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.OMPI_COMM_WORLD_SIZE !== undefined || env.PMIX_RANK !== undefined || env.PMI_SIZE !== undefined;
}

function checkOptions(options: DistributedOptions): { timeoutMs: number; bucketFloats: number; orderedSum: boolean } {
  if (options === null || typeof options !== 'object') {
    throw new ValueError(`distributed.init: options must be an object, got ${describeValue(options)}`);
  }
  const { timeoutMs = DEFAULT_TIMEOUT_MS, bucketCapMb = DEFAULT_BUCKET_CAP_MB, orderedSum = false } = options;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ValueError(`distributed.init: timeoutMs must be a positive number of milliseconds, got ${describeValue(timeoutMs)}`);
  }
  if (typeof bucketCapMb !== 'number' || Number.isNaN(bucketCapMb) || bucketCapMb <= 0) {
    throw new ValueError(`distributed.init: bucketCapMb must be a positive number of MiB (Infinity: one bucket), got ${describeValue(bucketCapMb)}`);
  }
  if (typeof orderedSum !== 'boolean') {
    throw new ValueError(`distributed.init: orderedSum must be a boolean, got ${describeValue(orderedSum)}`);
  }
  // At least one float; Infinity (one bucket of every gradient) travels as a float count no net reaches.
  return { timeoutMs, bucketFloats: Math.max(1, Math.floor(Math.min(bucketCapMb, 2 ** 40) * 2 ** 18)), orderedSum };
}

function inPlace(options: unknown): boolean {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ValueError(`distributed.allreduce: options must be an object, got ${describeValue(options)}`);
  }
  const unknown = Object.keys(options).find((k) => k !== 'inPlace');
  if (unknown) throw new ValueError(`distributed.allreduce: unknown option '${unknown}' (expected inPlace)`);
  const v = (options as { inPlace?: unknown }).inPlace ?? false;
  if (typeof v !== 'boolean') throw new ValueError(`distributed.allreduce: inPlace must be a boolean, got ${describeValue(v)}`);
  return v;
}

function checkRoot(root: unknown, size: number): number {
  if (typeof root !== 'number' || !Number.isInteger(root) || root < 0 || root >= size) {
    throw new ValueError(`distributed.broadcast: root must be a rank in [0, ${size - 1}], got ${describeValue(root)}`);
  }
  return root;
}

function checkHost(x: unknown, op: string): Tensor {
  const t = checkTensor(x, op, 'x');
  if (t.device !== 'cpu') {
    throw new DeviceError(`${op}: x is on ${t.device}; the collectives work on host tensors for now (use .to('cpu'))`);
  }
  return t;
}

/** The one process of a job started without a launcher. */
class LocalCommunicator implements Communicator {
  readonly rank = 0;
  readonly size = 1;
  readonly localRank = 0;

  async allreduce(x: Tensor, options: { inPlace?: boolean } = {}): Promise<Tensor> {
    const t = checkHost(x, 'distributed.allreduce');
    return inPlace(options) ? t : new Tensor(native.reshape(t.handle, [...t.shape]));
  }

  async broadcast(x: Tensor, root = 0): Promise<Tensor> {
    const t = checkHost(x, 'distributed.broadcast');
    checkRoot(root, 1);
    return new Tensor(native.reshape(t.handle, [...t.shape]));
  }

  async barrier(): Promise<void> {}
}

class MpiCommunicator implements Communicator {
  constructor(readonly rank: number, readonly size: number, readonly localRank: number,
    readonly timeoutMs: number, readonly bucketFloats: number, readonly orderedSum: boolean) {}

  async allreduce(x: Tensor, options: { inPlace?: boolean } = {}): Promise<Tensor> {
    const t = checkHost(x, 'distributed.allreduce');
    const own = inPlace(options);
    const sum = await native.mpiAllreduce(t.handle, this.timeoutMs, own, this.orderedSum);
    return own ? t : new Tensor(sum!);
  }

  async broadcast(x: Tensor, root = 0): Promise<Tensor> {
    const t = checkHost(x, 'distributed.broadcast');
    return new Tensor(await native.mpiBroadcast(t.handle, checkRoot(root, this.size), this.timeoutMs));
  }

  async barrier(): Promise<void> {
    await native.mpiBarrier(this.timeoutMs);
  }
}

/**
 * @internal The MPI job behind a communicator given to fit's `distributed` option: null for the
 * one process of a job started without a launcher (fit then trains alone); a ValueError for
 * anything but a communicator from init().
 */
export function jobOf(comm: unknown, where: string): { comm: Communicator; timeoutMs: number; bucketFloats: number; orderedSum: boolean } | null {
  if (comm instanceof LocalCommunicator) return null;
  if (comm instanceof MpiCommunicator) return { comm, timeoutMs: comm.timeoutMs, bucketFloats: comm.bucketFloats, orderedSum: comm.orderedSum };
  throw new ValueError(`${where}: distributed must be the communicator that ck.distributed.init() resolves to, got ${describeValue(comm)}`);
}

let initialized: Promise<Communicator> | undefined;

// MPI is finalized when the process exits cleanly. A process exiting with an error skips it (it
// would wait for the other ranks): the launcher sees the non-zero status and ends every rank.
// If finalizing fails (a collective timed out), the process exits non-zero for the same reason.
function finalizeOnExit(timeoutMs: number): void {
  process.once('exit', (code) => {
    if (code !== 0) return;
    try {
      native.mpiFinalize(timeoutMs);
    } catch (e) {
      process.stderr.write(`convkit: ${(e as Error).message}; exiting with status 1 so that the launcher ends the job\n`);
      process.exitCode = 1;
    }
  });
}

/**
 * Joins the job this process belongs to: under an MPI launcher, loads Open MPI (libmpi.so.40;
 * CONVKIT_MPI_LIBRARY names another path) and initialises it; otherwise returns rank 0 of 1
 * without loading anything. Throws a DeviceError when a launcher started the process but the
 * library cannot be loaded. Call it once per process: later calls return the same communicator.
 */
export async function init(options: DistributedOptions = {}): Promise<Communicator> {
  const { timeoutMs, bucketFloats, orderedSum } = checkOptions(options);
  if (!initialized) {
    initialized = (async () => {
      if (!underLauncher()) return new LocalCommunicator();
      const started = native.mpiInit(timeoutMs);
      finalizeOnExit(timeoutMs);
      const { rank, size, localRank } = await started;
      return new MpiCommunicator(rank, size, localRank, timeoutMs, bucketFloats, orderedSum);
    })();
  }
  return initialized;
}
