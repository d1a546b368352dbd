#!/usr/bin/python3
"""The PyTorch half of the lock-step check of the seeds' MNIST recipe (BENCHMARKS.md, "Noise or a
systematic difference?"). Reads DIR as recipe-lockstep.js wrote it (convkit's initial weights,
fit's batch order, convkit's per-step losses and final weights), trains torch_peer's W1 from the
same weights over the same batches (SGD lr 0.01, batch 100, mean cross-entropy, float32) and
prints how far the per-step losses drift apart, both sets of final weights' test accuracy in
PyTorch, and the largest difference between the final weights. Writes DIR/torch-final.bin (in
convkit's order) for `recipe-lockstep.js --eval`.
  /usr/bin/python3 scripts/bench/recipe_lockstep.py DIR [--threads 2] [--mnist DIR]
"""
import argparse, json, os
import numpy as np
import torch
import torch.nn.functional as F
from torch_peer import MNIST_DIR, W1, load_mnist

# W1's weights in convkit's getWeights order: (name, convkit shape, PyTorch parameter).
SHAPES = [('c1.weight', (5, 5, 1, 32)), ('c1.bias', (32,)), ('c2.weight', (5, 5, 32, 64)), ('c2.bias', (64,)),
          ('fc.weight', (1024, 10)), ('fc.bias', (10,))]


def to_torch(flat):
    """convkit's flat float32 weights -> PyTorch state dict (HWIO -> OIHW, [in,out] -> [out,in])."""
    state, at = {}, 0
    for name, shape in SHAPES:
        n = int(np.prod(shape))
        w = torch.from_numpy(flat[at:at + n].reshape(shape).copy())
        at += n
        state[name] = w.permute(3, 2, 0, 1).contiguous() if w.dim() == 4 else w.t().contiguous() if w.dim() == 2 else w
    assert at == flat.size, f'{flat.size} values, W1 has {at}'
    return state


def to_convkit(state):
    parts = []
    for name, _ in SHAPES:
        w = state[name].detach()
        parts.append((w.permute(2, 3, 1, 0) if w.dim() == 4 else w.t() if w.dim() == 2 else w).contiguous().numpy().ravel())
    return np.concatenate(parts).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('dir')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--mnist', default=MNIST_DIR)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y, xt, yt = load_mnist(a.mnist)
    ck = json.load(open(os.path.join(a.dir, 'convkit.json')))
    order = torch.from_numpy(np.fromfile(os.path.join(a.dir, 'order.bin'), dtype=np.int32).astype(np.int64))
    init = to_torch(np.fromfile(os.path.join(a.dir, 'init.bin'), dtype=np.float32))
    model = W1()
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for i in range(0, order.numel(), 100):
        idx = order[i:i + 100]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    ckl = np.array(ck['losses'])
    tl = np.array(losses)
    assert len(ckl) == len(tl), f'convkit ran {len(ckl)} steps, the order has {len(tl)}'
    rel = np.abs(ckl - tl) / tl
    print(f'{len(tl)} steps from convkit\'s initial weights over fit\'s batches (seed {ck["seed"]}):')
    for s in (1, 2, 3, 10, 50, 100, 200, 600, 1200, 3000, 6000):
        if s <= len(tl):
            print(f'  step {s:5d}: convkit loss {ckl[s - 1]:.6f}, PyTorch {tl[s - 1]:.6f} (relative difference {rel[s - 1]:.1e})')
    print(f'  largest relative difference of a step loss: first 10 steps {rel[:10].max():.1e}, first 100 {rel[:100].max():.1e}, all {rel.max():.1e}')
    for bound in (1e-6, 1e-4, 1e-2):
        over = np.nonzero(rel > bound)[0]
        print(f'  first step whose losses differ by more than {bound:.0e}: {over[0] + 1 if over.size else "none"}')
    print(f'  mean loss of the last 600 steps: convkit {ckl[-600:].mean():.5f}, PyTorch {tl[-600:].mean():.5f}')
    ck_final = to_torch(np.fromfile(os.path.join(a.dir, 'final.bin'), dtype=np.float32))
    with torch.no_grad():
        ours = (model(xt).argmax(1) == yt).float().mean().item()
        peer = W1()
        peer.load_state_dict(ck_final)
        theirs = (peer(xt).argmax(1) == yt).float().mean().item()
        diff = max((ck_final[k] - v).abs().max().item() for k, v in model.state_dict().items())
        scale = max(v.abs().max().item() for v in model.state_dict().values())
    print(f'test accuracy: convkit\'s final weights in PyTorch {theirs * 100:.2f}% (convkit says {ck["testAccuracy"] * 100:.2f}%), '
          f'PyTorch\'s final weights {ours * 100:.2f}%; largest final-weight difference {diff:.2e} (largest weight {scale:.2f})')
    to_convkit(model.state_dict()).tofile(os.path.join(a.dir, 'torch-final.bin'))
    json.dump({'losses': losses, 'testAccuracy': ours, 'convkitFinalInTorch': theirs}, open(os.path.join(a.dir, 'torch.json'), 'w'))


if __name__ == '__main__':
    main()
