#!/usr/bin/env python3
"""train_torch.py — the PyTorch side of `make bench`: trains the same MLP
(784-512-256-10, ReLU, dropout 0.2, Adam, batch 128) or LeNet-5 (the
specs/lenet.lmod network, SGD momentum 0.9, weight decay 5e-4, batch 64) on
Fashion-MNIST with torch.set_num_threads(THREADS), from tensors already in
memory (no DataLoader: the fastest PyTorch can go).

Prints one line of JSON: samples/s over the timed steps, and the
CLOCK_MONOTONIC time at the end of the first step (bench/train.py subtracts
its own clock reading taken just before it started this process, so the
figure includes interpreter start and `import torch`, as a user sees it).
Peak RSS is measured by the caller (wait4's rusage).

    python3 bench/train_torch.py --model lenet --steps 200 --threads 2
"""
import argparse
import gzip
import json
import os
import struct
import time

import numpy as np


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "lenet"], required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    # bytes in memory, normalised per batch as a DataLoader's transform would
    x = torch.from_numpy(x.copy()).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))

    if args.model == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        bs = 128
    else:
        class LeNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
                self.conv2 = nn.Conv2d(6, 16, 5)
                self.fc1 = nn.Linear(400, 120)
                self.fc2 = nn.Linear(120, 84)
                self.fc3 = nn.Linear(84, 10)

            def forward(self, t):
                t = F.max_pool2d(F.relu(self.conv1(t)), 2)
                t = F.max_pool2d(F.relu(self.conv2(t)), 2)
                t = F.relu(self.fc1(t.flatten(1)))
                t = F.relu(self.fc2(t))
                return self.fc3(t)

        model = LeNet()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        bs = 64
    model.train()
    perm = torch.randperm(x.shape[0])
    nb = x.shape[0] // bs

    def step(i):
        idx = perm[(i % nb) * bs:(i % nb + 1) * bs]
        opt.zero_grad(set_to_none=True)
        xb = (x[idx].float() / 255.0 - 0.286) / 0.353
        loss = F.cross_entropy(model(xb), y[idx])
        loss.backward()
        opt.step()
        return loss

    step(0)
    first_step_end = time.monotonic()
    for i in range(1, args.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        loss = step(i)
    dt = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": args.steps * bs / dt, "first_step_end": first_step_end,
                      "loss": float(loss.detach()), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
