#!/usr/bin/env python3
"""Exports full torchvision models with random weights for npm run check:onnx (scripts/check-onnx.js).

    python3 scripts/check-onnx.py OUT_DIR

writes resnet18.onnx, mobilenet_v2.onnx, mobilenet_v3_small.onnx and efficientnet_b0.onnx
(224x224x3 inputs, 1000 classes, opset 14 so that HardSwish is one operator, dynamic batch),
each in eval mode with its randomly initialised weights and batch-norm statistics moved away
from 0 and 1 (so a swapped statistic shows).
"""
import sys

import torch
import torchvision


def export(name, model, path):
    g = torch.Generator().manual_seed(len(name))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 224, 224), path, opset_version=14, input_names=['image'],
                      output_names=['scores'], dynamic_axes={'image': {0: 'batch'}, 'scores': {0: 'batch'}})


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    for name in ['resnet18', 'mobilenet_v2', 'mobilenet_v3_small', 'efficientnet_b0']:
        export(name, getattr(torchvision.models, name)(), f'{out}/{name}.onnx')
        print(name, flush=True)


if __name__ == '__main__':
    main()
