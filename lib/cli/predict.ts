// convkit predict MODEL IMAGE...: each image decoded and resized as in training (the size,
// channels and class names come from the model's metadata), then the top-k classes.
import * as fs from 'fs';
import * as ck from '../index';
import { CliError, loadTrainedModel, output, percent } from './common';

export async function predict(modelPath: string, images: string[], opts: { top: number; json: boolean }): Promise<void> {
  const out = output(opts.json);
  const { model, meta } = await loadTrainedModel(modelPath);
  const [h, w] = meta.imageSize;
  const c = meta.channels;
  const size = h * w * c;
  const x = new Float32Array(images.length * size);
  for (const [i, file] of images.entries()) {
    let stat: fs.Stats | null = null;
    try {
      stat = fs.statSync(file);
    } catch {
      // reported below
    }
    if (!stat?.isFile()) throw new CliError(`image ${file} does not exist`);
    let t: ck.Tensor;
    try {
      t = await ck.data.loadImage(file, { imageSize: meta.imageSize, channels: c });
    } catch (e) {
      if (e instanceof ck.ConvkitError) throw new CliError(`cannot read image ${file}: ${e.message.replace(/^loadImage: cannot read [^:]*: /, '')}`);
      throw e;
    }
    x.set(await t.data(), i * size);
  }
  const probs = await model.predict(ck.tensor(x, [images.length, h, w, c]), { batchSize: 32 }).data();
  const k = meta.classNames.length;
  const top = Math.min(opts.top, k);
  const results = images.map((file, i) => {
    const row = Array.from(probs.subarray(i * k, (i + 1) * k), (p, index) => ({ index, class: meta.classNames[index], probability: p }));
    row.sort((a, b) => b.probability - a.probability);
    return { image: file, top: row.slice(0, top) };
  });
  out.emit({ type: 'predictions', model: modelPath, imageSize: [h, w], channels: c, predictions: results });
  if (!opts.json) {
    const width = Math.max(...meta.classNames.map((n) => n.length));
    for (const r of results) {
      out.info(r.image);
      for (const t of r.top) out.info(`  ${t.class.padEnd(width)}  ${percent(t.probability).padStart(7)}`);
    }
  }
}
