// Keras's model.summary() table.
export interface SummaryRow {
  name: string;
  className: string;
  outputShape: (number | null)[];
  params: number;
  trainableParams: number;
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

export function formatSummary(modelName: string, rows: SummaryRow[], print: (line: string) => void,
  lineLength = 65, positions = [0.45, 0.85, 1]): void {
  const stops = positions.map((p) => (p <= 1 ? Math.floor(lineLength * p) : p));
  const widths = [stops[0], stops[1] - stops[0], stops[2] - stops[1]];
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
  line([' Layer (type)', 'Output Shape', 'Param #']).forEach((l) => print(l));
  print('='.repeat(lineLength));
  rows.forEach((r, i) => {
    line([` ${r.name} (${r.className})`, shapeText(r.outputShape), String(r.params)]).forEach((l) => print(l));
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
