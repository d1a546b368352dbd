// Keras's model.summary() table.
export interface SummaryRow {
  name: string;
  className: string;
  outputShape: (number | null)[];
  params: number;
  trainableParams: number;
  /** Functional models: the layer outputs this layer reads ('conv2d[0][0]'). */
  connectedTo?: string[];
}

const thousands = (n: number): string => n.toLocaleString('en-US');

function shapeText(shape: (number | null)[]): string {
  return `(${shape.map((d) => (d === null ? 'None' : String(d))).join(', ')})`;
}

/** Splits text into pieces that fit width (Keras wraps long cells onto following lines). */
function wrap(text: string, width: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length || pieces.length === 0; i += width) pieces.push(text.slice(i, i + width));
  return pieces;
}

/**
 * Keras's table: three columns for Sequential models (line length 65), and for functional ones
 * (rows with connectedTo) a fourth, 'Connected to' (line length 98).
 */
export function formatSummary(modelName: string, rows: SummaryRow[], print: (line: string) => void,
  lineLength?: number, positions?: number[]): void {
  const functional = rows.some((r) => r.connectedTo !== undefined);
  lineLength ??= functional ? 98 : 65;
  positions ??= functional ? [0.33, 0.55, 0.67, 1] : [0.45, 0.85, 1];
  const stops = positions.map((p) => (p <= 1 ? Math.floor(lineLength! * p) : p));
  const widths = stops.map((s, i) => s - (i ? stops[i - 1] : 0));
  const line = (cells: string[]): string[] => {
    const wrapped = cells.map((c, i) => wrap(c, widths[i] - 1));
    const height = Math.max(...wrapped.map((w) => w.length));
    const lines: string[] = [];
    for (let r = 0; r < height; r++) {
      lines.push(wrapped.map((w, i) => (w[r] ?? '').padEnd(widths[i])).join('').trimEnd());
    }
    return lines;
  };
  print(`Model: "${modelName}"`);
  print('_'.repeat(lineLength));
  line([' Layer (type)', 'Output Shape', 'Param #', ...(functional ? ['Connected to'] : [])]).forEach((l) => print(l));
  print('='.repeat(lineLength));
  rows.forEach((r, i) => {
    const cells = [` ${r.name} (${r.className})`, shapeText(r.outputShape), String(r.params)];
    if (functional) {
      // Keras prints an input layer's shape as a list, and the inbound tensors as a Python list.
      if (r.className === 'InputLayer') cells[1] = `[${cells[1]}]`;
      cells.push(`[${(r.connectedTo ?? []).map((c) => `'${c}'`).join(', ')}]`);
    }
    line(cells).forEach((l) => print(l));
    if (i < rows.length - 1) print('');
  });
  print('='.repeat(lineLength));
  const total = rows.reduce((n, r) => n + r.params, 0);
  const trainable = rows.reduce((n, r) => n + r.trainableParams, 0);
  print(`Total params: ${thousands(total)}`);
  print(`Trainable params: ${thousands(trainable)}`);
  print(`Non-trainable params: ${thousands(total - trainable)}`);
  print('_'.repeat(lineLength));
}
