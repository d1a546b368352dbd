#!/usr/bin/python3
"""PyTorch (CPU) on convkit's benchmark workloads W1 and W2, for `npm run bench`.

Prints one JSON object: training images/s for W1 (batch 100) and W2 (batch 64), W1 inference
images/s at batch 1/100/1000 and batch-1 latency. --cl uses channels_last (PyTorch's fastest
CPU layout for convolutions); --threads sets torch's thread count (convkit uses every core).
--mnist-epoch DIR instead times one epoch of the seeds' recipe on real MNIST (IDX files in DIR)
and reports the process's peak RSS; --onnx FILE exports W1 for onnxruntime-node and exits.
--device cuda runs the same workloads on the GPU (eager, cuDNN, timings bracketed by
torch.cuda.synchronize) and adds W2 at batch 512, for `npm run bench:gpu`; --precision picks the
math as convkit's ck.setPrecision does: fp32 (TF32 off), tf32 (allow_tf32 for cuDNN and matmul)
or bf16 (torch.autocast with bfloat16 around the forward pass and the loss, TF32 off).
"""
import argparse, contextlib, json, os, resource, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class W1(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.fc = nn.Conv2d(1, 32, 5), nn.Conv2d(32, 64, 5), nn.Linear(1024, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        # Flatten in h,w,c order as Keras does (a permute, as a Keras port to PyTorch needs).
        return self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


class W2(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.ModuleList([nn.Conv2d(3, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1),
                                nn.Conv2d(32, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)])
        self.fc = nn.Linear(4096, 10)

    def forward(self, x):
        x = F.relu(self.c[1](F.relu(self.c[0](x))))
        x = F.max_pool2d(x, 2)
        x = F.relu(self.c[3](F.relu(self.c[2](x))))
        x = F.max_pool2d(x, 2)
        return self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


DEVICE = 'cpu'
PRECISION = 'fp32'


def autocast():
    """The forward pass's autocast context: bf16 under --precision bf16, else a no-op."""
    if DEVICE == 'cuda' and PRECISION == 'bf16':
        return torch.autocast('cuda', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync():
    if DEVICE == 'cuda':
        torch.cuda.synchronize()


def fmt(x, cl):
    x = x.to(DEVICE)
    return x.contiguous(memory_format=torch.channels_last) if cl else x


def train_rate(model, shape, batch, steps, cl):
    model = model.to(DEVICE)
    model = model.to(memory_format=torch.channels_last) if cl else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = fmt(torch.rand(batch, *shape), cl)
    y = torch.randint(0, 10, (batch,)).to(DEVICE)
    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    for _ in range(5):
        step()
    sync()
    rates = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(batch * steps / (time.perf_counter() - t))
    return statistics.median(rates)


def infer_rate(model, batch, total, cl):
    model = model.to(DEVICE)
    model = (model.to(memory_format=torch.channels_last) if cl else model).eval()
    x = fmt(torch.rand(batch, 1, 28, 28), cl)
    with torch.no_grad(), autocast():
        for _ in range(3):
            model(x)
        sync()
        reps = max(1, total // batch)
        rates = []
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(reps):
                model(x)
            sync()
            rates.append(batch * reps / (time.perf_counter() - t))
    return statistics.median(rates)


def read_idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def mnist_epoch(folder, cl):
    """One epoch of the seeds' recipe as a PyTorch user writes it: W1, SGD lr 0.01, batch 100,
    shuffled each epoch, running loss and accuracy; the whole set in memory as float32."""
    x = read_idx(os.path.join(folder, 'train-images-idx3-ubyte')).float().div_(255).unsqueeze(1)
    y = read_idx(os.path.join(folder, 'train-labels-idx1-ubyte')).long()
    model = W1()
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    t = time.perf_counter()
    order = torch.randperm(x.shape[0])
    loss_sum, correct = 0.0, 0
    for i in range(0, x.shape[0], 100):
        idx = order[i:i + 100]
        xb = fmt(x[idx], cl)
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = F.cross_entropy(out, y[idx])
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
        correct += (out.argmax(1) == y[idx]).sum().item()
    seconds = time.perf_counter() - t
    return {'epoch_s': seconds, 'loss': loss_sum / x.shape[0], 'accuracy': correct / x.shape[0],
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cl', action='store_true')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--mnist-epoch', metavar='DIR')
    ap.add_argument('--onnx', metavar='FILE')
    ap.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    ap.add_argument('--precision', choices=['fp32', 'tf32', 'bf16'], default='fp32')
    a = ap.parse_args()
    global DEVICE, PRECISION
    DEVICE, PRECISION = a.device, a.precision
    if DEVICE == 'cuda':
        if not torch.cuda.is_available():
            why = 'is a CPU-only build' if torch.version.cuda is None else 'sees no CUDA device'
            print(json.dumps({'error': f'torch {torch.__version__} {why}'}))
            return
        torch.backends.cuda.matmul.allow_tf32 = PRECISION == 'tf32'
        torch.backends.cudnn.allow_tf32 = PRECISION == 'tf32'
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    if a.onnx:
        torch.onnx.export(W1().eval(), torch.zeros(1, 1, 28, 28), a.onnx, input_names=['x'], output_names=['logits'],
                          dynamic_axes={'x': {0: 'n'}, 'logits': {0: 'n'}}, opset_version=13)
        print(json.dumps({'onnx': a.onnx}))
        return
    if a.mnist_epoch:
        print(json.dumps({'torch': torch.__version__, 'threads': a.threads, **mnist_epoch(a.mnist_epoch, a.cl)}))
        return
    steps = 10 if a.quick else 40
    out = {'torch': torch.__version__, 'layout': 'channels_last' if a.cl else 'nchw', 'threads': a.threads}
    if DEVICE == 'cuda':
        out.update(device=torch.cuda.get_device_name(0), cudnn=torch.backends.cudnn.version(),
                   precision=PRECISION)
        # The images per timed repetition that gpu.js gives convkit per timed epoch (W1 30000,
        # W2 12800 and 25600, inference 2000 at batch 1 else 20000): a few hundred ms on an H100.
        train_steps = (10, 3, 3) if a.quick else (300, 200, 50)
        infer_total = lambda b: 2000 if a.quick or b == 1 else 20000
    else:
        train_steps = (steps, max(3, steps // 4), None)
        infer_total = lambda b: 2000 if a.quick else 6000
    out['w1_train'] = train_rate(W1(), (1, 28, 28), 100, train_steps[0], a.cl)
    out['w2_train'] = train_rate(W2(), (3, 32, 32), 64, train_steps[1], a.cl)
    if DEVICE == 'cuda':
        out['w2_train_512'] = train_rate(W2(), (3, 32, 32), 512, train_steps[2], a.cl)
    m = W1()
    out['w1_infer'] = {str(b): infer_rate(m, b, infer_total(b), a.cl) for b in (1, 100, 1000)}
    with torch.no_grad(), autocast():
        m = m.to(DEVICE).eval()
        x = fmt(torch.rand(1, 1, 28, 28), a.cl)
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            m(x)
            sync()
            lat.append(time.perf_counter() - t)
    out['w1_latency_ms'] = statistics.median(lat) * 1e3
    print(json.dumps(out))


if __name__ == '__main__':
    main()
