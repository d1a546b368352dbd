#!/usr/bin/python3
"""The random draws torch_recipe.py makes for one seed, without its training: the initial weights
(torch.manual_seed, W1(), then Keras's glorot_uniform kernels and zero biases) and each epoch's
torch.randperm batch order, in the same sequence on the same generator. Writes DIR/init.bin
(float32, in convkit's getWeights order: kernels HWIO / [in,out]) and DIR/order.bin (int32,
epochs x 60,000) for recipe-split.js, which trains convkit from them (BENCHMARKS.md, "Noise or a
systematic difference?").
  /usr/bin/python3 scripts/bench/torch_draws.py --seed N --out DIR [--epochs 10]
"""
import argparse, os
import torch
import torch.nn as nn
from torch_peer import W1
from recipe_lockstep import to_convkit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--epochs', type=int, default=10)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    model = W1()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    to_convkit(model.state_dict()).tofile(os.path.join(a.out, 'init.bin'))
    torch.cat([torch.randperm(60000) for _ in range(a.epochs)]).int().numpy().tofile(os.path.join(a.out, 'order.bin'))


if __name__ == '__main__':
    main()
