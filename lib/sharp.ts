// sharp (libvips) is loaded on first use, so `require('convkit')` stays fast and works where
// sharp cannot load; only image decoding and the pictures need it.
import type SharpType from 'sharp';
import { DeviceError } from './errors';

let cached: typeof SharpType | null = null;

export function sharp(...args: Parameters<typeof SharpType>): ReturnType<typeof SharpType> {
  if (!cached) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require('sharp') as typeof SharpType;
    } catch (e) {
      throw new DeviceError(`images: the 'sharp' package cannot be loaded (${(e as Error).message.split('\n')[0]}); it decodes images and draws the pictures`);
    }
  }
  return cached(...args);
}
