#!/usr/bin/python3
"""The seeds' MNIST recipe in PyTorch, set up as Keras runs it, as an independent reference for
convkit's accuracy figures (scripts/bench/mnist-recipe.js): the tutorial's CNN with Keras's
initial weights (glorot_uniform kernels, zero biases), batch 100, shuffled epochs, and SGD lr 0.01
for 10 epochs or Adam (lr 1e-3, epsilon 1e-7, Keras's defaults) for 3. Prints the test accuracy
after each epoch.
  /usr/bin/python3 scripts/bench/torch_recipe.py --seed N [--adam] [--mnist DIR]
"""
import argparse, os
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_peer import MNIST_DIR, W1, load_mnist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--adam', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--mnist', default=MNIST_DIR)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x, y, xt, yt = load_mnist(a.mnist)
    model = W1()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    if a.adam:
        opt, epochs = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7), 3
    else:
        opt, epochs = torch.optim.SGD(model.parameters(), lr=0.01), 10
    for epoch in range(epochs):
        order, total = torch.randperm(x.shape[0]), 0.0
        for i in range(0, x.shape[0], 100):
            idx = order[i:i + 100]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        print(f'epoch {epoch + 1}: loss {total / x.shape[0]:.4f}, test accuracy {acc * 100:.2f}% (seed {a.seed}, {"Adam" if a.adam else "SGD"})', flush=True)


if __name__ == '__main__':
    main()
