// ck.io: model formats other than the TensorFlow.js layers folder (which model.save and
// ck.loadModel read and write).
export { encodeOnnx, ONNX_OPSET, toOnnx } from './onnx';
export type { OnnxExportable, OnnxExportOptions, OnnxExportResult } from './onnx';
export { decodeOnnx, loadOnnx, modelFromOnnx } from './onnx-import';
export type { OnnxImportOptions } from './onnx-import';
