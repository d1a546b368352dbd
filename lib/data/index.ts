// ck.data: image folders, image files and augmentation.
import { augment, AugmentImages, AugmentOptions, AUGMENT_DEFAULTS } from './augment';
import { Dataset } from './dataset';
import { imageFolder, imageFolderDataset } from './image-folder';
import { decodeImage, IMAGE_EXTENSIONS, loadImage } from './images';
import { Tensor } from '../tensor';

export type { AugmentOptions } from './augment';
export type { ImageFolderOptions, ImageFolderResult, ImageSplit } from './image-folder';
export type { ImageOptions } from './images';
export { AugmentImages } from './augment';
export { Dataset } from './dataset';
export type { ImageElement } from './image-folder';

export const data = {
  imageFolder,
  imageFolderDataset,
  /** A Dataset over an array. */
  array: <T>(items: readonly T[]) => Dataset.fromArray(items),
  /** A Dataset from a generator function, called once per pass. */
  generator: <T>(fn: () => AsyncIterator<T> | Iterator<T>, size?: number) => Dataset.generator(fn, size ?? null),
  loadImage,
  decodeImage,
  augment,
  /** A fit callback that re-augments `images` (a training tensor) before each epoch. */
  augmentImages: (images: Tensor, options: AugmentOptions, args?: { seed?: number }) => new AugmentImages(images, options, args),
  AUGMENT_DEFAULTS,
  IMAGE_EXTENSIONS,
};
