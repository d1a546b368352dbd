// convkit evaluate MODEL <mnist | fashion-mnist | DIR>: loss and accuracy of a trained model on a
// dataset's test split or on every image of a folder (decoded as the model was trained).
import * as path from 'path';
import * as ck from '../index';
import { argmaxRows, CliError, DATASETS, formatCount, isDatasetName, loadTrainedModel, output, percent } from './common';

export async function evaluate(modelPath: string, source: string, opts: { json: boolean; batchSize: number; testLimit?: number }): Promise<void> {
  const out = output(opts.json);
  const { model, meta } = await loadTrainedModel(modelPath);
  const classes = meta.classNames.length;
  let images: ck.Tensor;
  let labels: Float32Array;
  let label: string;
  let skipped = 0;
  if (isDatasetName(source)) {
    const ds = DATASETS[source];
    if (meta.imageSize[0] !== 28 || meta.imageSize[1] !== 28 || meta.channels !== 1) {
      throw new CliError(`the model takes ${meta.imageSize[1]}x${meta.imageSize[0]}x${meta.channels} images; ${ds.label} images are 28x28x1`);
    }
    let test: ck.Tensor;
    let testLabels: ck.Tensor;
    let names: string[];
    try {
      const loaded = await ds.load({ trainLimit: 1, testLimit: opts.testLimit });
      ({ images: test, labels: testLabels } = loaded.test);
      names = loaded.classNames;
    } catch (e) {
      if (e instanceof ck.ConvkitError) throw new CliError(e.message.replace(/^datasets: /, ''));
      throw e;
    }
    if (names.length !== classes) throw new CliError(`the model has ${classes} classes; ${ds.label} has ${names.length}`);
    images = test;
    labels = testLabels.dataSync().slice();
    label = `${ds.label} test`;
  } else {
    let folder: ck.ImageFolderResult;
    try {
      folder = await ck.data.imageFolder(source, {
        imageSize: meta.imageSize, channels: meta.channels, validationSplit: 0,
        onWarning: (m) => out.warn(m.replace(/^imageFolder: /, '')),
      });
    } catch (e) {
      if (e instanceof ck.ConvkitError) throw new CliError(e.message.replace(/^imageFolder: /, ''));
      throw e;
    }
    // The folder's classes by name onto the model's class ids.
    const map = folder.classNames.map((name) => meta.classNames.indexOf(name));
    const unknown = folder.classNames.filter((_, i) => map[i] < 0);
    if (unknown.length) {
      throw new CliError(`${source} has class folders the model does not know: ${unknown.join(', ')} (the model's classes: ${meta.classNames.join(', ')})`);
    }
    images = folder.train.images;
    labels = Float32Array.from(folder.train.labels.dataSync(), (l) => map[l]);
    label = path.basename(path.resolve(source));
    skipped = folder.skipped.length;
  }
  const [loss, accuracy] = await model.evaluate(images, ck.toCategorical(labels, classes), { batchSize: opts.batchSize });
  const predicted = argmaxRows(await model.predict(images, { batchSize: opts.batchSize }).data(), classes);
  const matrix = ck.viz.confusionMatrix(labels, predicted, classes);
  const perClass = meta.classNames.map((name, i) => {
    const total = matrix[i].reduce((a, b) => a + b, 0);
    return { class: name, images: total, accuracy: total ? matrix[i][i] / total : null };
  });
  out.emit({ type: 'evaluation', model: modelPath, data: source, images: labels.length, loss, accuracy, skippedImages: skipped, perClass, confusion: matrix });
  if (!opts.json) {
    out.info(`${label}: accuracy ${percent(accuracy)}, loss ${loss.toFixed(4)} on ${formatCount(labels.length)} images`);
    const width = Math.max(...meta.classNames.map((n) => n.length));
    for (const p of perClass) if (p.images) out.info(`  ${p.class.padEnd(width)}  ${percent(p.accuracy ?? 0).padStart(7)} of ${formatCount(p.images)}`);
  }
}
