// ck.applications: builders for well-known image classifiers, laid out, named and sized as
// Keras's (keras.applications and the Keras CIFAR-10 ResNet example), for any input size and
// class count, with or without the classifier on top, optionally with saved weights.
import { loadWeights } from './common';
import { efficientNetB0 } from './efficientnet';
import { mobileNet } from './mobilenet';
import { mobileNetV2 } from './mobilenet_v2';
import { mobileNetV3Large, mobileNetV3Small } from './mobilenet_v3';
import { resNet20 } from './resnet';
import { resNet101, resNet152, resNet50 } from './resnet50';
import { vgg } from './vgg';

export type { ApplicationArgs } from './common';
export type { EfficientNetArgs } from './efficientnet';
export type { MobileNetArgs } from './mobilenet';
export type { MobileNetV2Args } from './mobilenet_v2';
export type { MobileNetV3Args } from './mobilenet_v3';
export type { ResNet20Args } from './resnet';
export type { ResNetArgs } from './resnet50';
export type { VggArgs } from './vgg';

export const applications = { mobileNet, mobileNetV2, mobileNetV3Small, mobileNetV3Large, resNet20, resNet50, resNet101, resNet152, vgg, efficientNetB0, loadWeights };
