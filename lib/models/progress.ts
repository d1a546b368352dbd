// Keras's fit progress: "Epoch 1/10" then a live bar on a TTY
//   540/540 [==============================] - 3s 5ms/step - loss: 0.9222 - accuracy: 0.7754
// and, when stdout is not a TTY, that final line once per epoch.
import { Callback, Logs } from '../callbacks';

export interface ProgressStream {
  isTTY?: boolean;
  write(s: string): unknown;
}

function formatTime(seconds: number): string {
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}:${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`;
  return `${Math.round(seconds)}s`;
}

function formatPerStep(seconds: number): string {
  if (seconds >= 1) return `${Math.round(seconds)}s/step`;
  if (seconds >= 1e-3) return `${Math.round(seconds * 1e3)}ms/step`;
  return `${Math.round(seconds * 1e6)}us/step`;
}

export function formatLogs(logs: Logs): string {
  return Object.entries(logs)
    .filter(([k, v]) => typeof v === 'number' && k !== 'batch' && k !== 'size')
    .map(([k, v]) => ` - ${k}: ${Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(4)}`)
    .join('');
}

/** Keras's bar: '=' up to the progress, '>' at its head, '.' for the rest. */
export function bar(done: number, total: number, width = 30): string {
  const progress = total > 0 ? Math.floor((width * Math.min(done, total)) / total) : width;
  if (progress === 0) return `[${'.'.repeat(width)}]`;
  return `[${'='.repeat(progress - 1)}${done < total ? '>' : '='}${'.'.repeat(width - progress)}]`;
}

export class ProgressLogger extends Callback {
  private epochStart = 0;
  private lastDraw = 0;
  private epoch = 0;

  constructor(private readonly epochs: number, private readonly steps: number, private readonly out: ProgressStream = process.stdout) {
    super();
  }

  async onEpochBegin(epoch: number) {
    this.epoch = epoch;
    this.epochStart = Date.now();
    this.lastDraw = 0;
    this.out.write(`Epoch ${epoch + 1}/${this.epochs}\n`);
  }

  async onBatchEnd(batch: number, logs: Logs = {}) {
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && batch + 1 < this.steps) return;
    this.lastDraw = now;
    const done = batch + 1;
    const elapsed = (now - this.epochStart) / 1000;
    const eta = (elapsed / done) * (this.steps - done);
    const width = String(this.steps).length;
    this.out.write(`\r${String(done).padStart(width)}/${this.steps} ${bar(done, this.steps)} - ETA: ${formatTime(eta)}${formatLogs(logs)}\x1b[K`);
  }

  async onEpochEnd(_epoch: number, logs: Logs = {}) {
    const elapsed = (Date.now() - this.epochStart) / 1000;
    const line = `${this.steps}/${this.steps} ${bar(this.steps, this.steps)} - ${formatTime(elapsed)} ${formatPerStep(elapsed / Math.max(1, this.steps))}${formatLogs(logs)}`;
    this.out.write(this.out.isTTY ? `\r${line}\x1b[K\n` : `${line}\n`);
  }
}
