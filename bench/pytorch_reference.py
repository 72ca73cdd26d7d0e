#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The notebook's training loop in PyTorch, timed the way bench/train_bench times eigencnn.

    bench/pytorch_reference.py [--data data/mnist] [--epochs 3] [--threads 2] [--batch-size 500]

Same model, Adam lr 1e-3, cross-entropy, batch 500 shuffled, pixels in [0, 1]; prints seconds per epoch,
the median, training and inference images/s (test set, batches of 1000, median of 5 passes), peak RSS,
and one JSON line with the same keys as train_bench. Random images of MNIST's shape stand in when the
data folder is missing (the speed does not depend on the pixel values).
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
                raw = f.read()
            ndim = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(path)


def load(data):
    try:
        xs = [read_idx(f"{data}/{p}-images-idx3-ubyte") for p in ("train", "t10k")]
        ys = [read_idx(f"{data}/{p}-labels-idx1-ubyte") for p in ("train", "t10k")]
        conv = lambda x: torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
        return conv(xs[0]), torch.from_numpy(ys[0].astype(np.int64)), conv(xs[1]), torch.from_numpy(ys[1].astype(np.int64)), data
    except FileNotFoundError as e:
        print(f"no MNIST ({e}): using random images of the same shape")
        g = torch.Generator().manual_seed(1)
        return (torch.rand(60000, 1, 28, 28, generator=g), torch.randint(0, 10, (60000,), generator=g),
                torch.rand(10000, 1, 28, 28, generator=g), torch.randint(0, 10, (10000,), generator=g), "random")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch-size", type=int, default=500)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xtr, ytr, xte, yte, source = load(a.data)
    model = nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = xtr.shape[0]
    secs = []
    for e in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, a.batch_size):
            idx = perm[i:i + a.batch_size]
            x, y = xtr[idx], ytr[idx]  # gathered per batch, as a shuffling DataLoader does
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        secs.append(time.perf_counter() - t0)
        print(f"epoch {e + 1}: {secs[-1]:.3f} s, {n / secs[-1]:.0f} images/s, loss {total / n:.4f}")
    model.eval()
    inf = []
    with torch.no_grad():
        for _ in range(5):
            t0 = time.perf_counter()
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, xte.shape[0], 1000))
            inf.append(time.perf_counter() - t0)
    med = statistics.median(secs)
    ips = xte.shape[0] / statistics.median(inf)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pytorch {torch.__version__}: {a.threads} thread(s), median epoch {med:.3f} s, {n / med:.0f} train images/s, "
          f"inference {ips:.0f} images/s, peak RSS {rss:.0f} MB, test acc {correct / xte.shape[0]:.4f}")
    print(json.dumps({"impl": "pytorch", "threads": a.threads, "data": source, "epoch_seconds_median": round(med, 4),
                      "train_images_per_second": round(n / med, 1), "inference_images_per_second": round(ips, 1),
                      "peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    sys.exit(main())
