#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch's side of bench/model_bench.cpp: the same layers, shapes, models and timing, one JSON line each.

    bench/pytorch_models.py layers [--threads 2]
    bench/pytorch_models.py bn_cnn [--data data/mnist] [--epochs 2] [--threads 2]
    bench/pytorch_models.py resnet [--batches 30] [--threads 2]

layers: forward and backward (autograd.grad of the output against the input and the parameters, with a fixed
upstream gradient; the graph kept between calls) of each layer in train mode, median of 20 calls after 3
warm-up calls. bn_cnn: nn.Sequential of the seed model with a BatchNorm2d after each conv, batch 500, Adam
lr 1e-3, shuffled MNIST; median seconds per epoch and eval-mode inference images/s. resnet: the narrowed
PreAct-ResNet (kuangliu's PreActBlock, widths 16-32-64, one block per stage; the same layers as eigencnn's
preact_resnet) on random 3x32x32 images, batch 128, Adam lr 1e-3.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import load  # noqa: E402  (MNIST reader, random images without the data)


def timed_median(f, warmup=3, reps=20):
    for _ in range(warmup):
        f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def layer_case(name, module, shape, threads):
    module.train()
    x = torch.rand(shape) * 2 - 1
    x.requires_grad_(True)
    with torch.no_grad():
        dy = torch.rand_like(module(x)) * 2 - 1
    fwd = timed_median(lambda: module(x))
    y = module(x)
    inputs = [x] + [p for p in module.parameters()]
    bwd = timed_median(lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True))
    n = shape[0]
    print(json.dumps({"impl": "pytorch", "bench": "layer", "name": name, "shape": str(list(shape)), "threads": threads,
                      "forward_ms": 1e3 * fwd, "backward_ms": 1e3 * bwd, "forward_images_per_second": n / fwd,
                      "backward_images_per_second": n / bwd}), flush=True)


class PreActBlock(nn.Module):
    """kuangliu's PreActBlock (BackdoorBench's PreActResNet18 block)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        sc = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + sc


class IdentityBlock(nn.Module):
    """The layers benchmark's residual block: BN, ReLU, conv3x3, BN, ReLU, conv3x3, plus x."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False))

    def forward(self, x):
        return self.body(x) + x


def preact_resnet(widths=(16, 32, 64), classes=10):
    layers, c = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)], widths[0]
    for s, w in enumerate(widths):
        layers.append(PreActBlock(c, w, 2 if s > 0 else 1))
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]  # no BatchNorm after the last block, as kuangliu's
    return nn.Sequential(*layers)


def layers(threads):
    act = (128, 16, 32, 32)
    layer_case("BatchNorm2d(16)", nn.BatchNorm2d(16), act, threads)
    layer_case("AvgPool2d(2)", nn.AvgPool2d(2), act, threads)
    layer_case("AdaptiveAvgPool2d(1)", nn.AdaptiveAvgPool2d(1), (128, 64, 8, 8), threads)
    layer_case("Dropout(0.5)", nn.Dropout(0.5), (500, 512), threads)
    layer_case("LeakyReLU(0.01)", nn.LeakyReLU(0.01), act, threads)
    layer_case("Sigmoid", nn.Sigmoid(), act, threads)
    layer_case("Tanh", nn.Tanh(), act, threads)
    layer_case("BatchNorm1d(512)", nn.BatchNorm1d(512), (500, 512), threads)
    layer_case("Softmax(dim=1)", nn.Softmax(dim=1), (500, 10), threads)  # the seed model's logits at batch 500
    layer_case("LogSoftmax(dim=1)", nn.LogSoftmax(dim=1), (500, 10), threads)
    layer_case("Residual(PreAct block, 32 ch)", IdentityBlock(32), (128, 32, 16, 16), threads)


def bn_cnn(data, epochs, threads):
    xtr, ytr, xte, yte, source = load(data)
    model = nn.Sequential(nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    secs = []
    for e in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        for i in range(0, len(xtr), 500):
            idx = perm[i:i + 500]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        secs.append(time.perf_counter() - t0)
        print(f"pytorch bn_cnn epoch {e + 1}: {secs[-1]:.3f} s, loss {loss.item():.4f}", file=sys.stderr)
    model.eval()
    inf, acc = [], 0.0
    with torch.no_grad():
        for _ in range(5):
            t0 = time.perf_counter()
            right = sum(int((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum()) for i in range(0, len(xte), 1000))
            inf.append(time.perf_counter() - t0)
            acc = right / len(xte)
    med = statistics.median(secs)
    print(json.dumps({"impl": "pytorch", "bench": "bn_cnn", "threads": threads, "data": source, "epoch_seconds_median": med,
                      "train_images_per_second": len(xtr) / med, "inference_images_per_second": len(xte) / statistics.median(inf),
                      "test_accuracy": acc}), flush=True)


def resnet(batches, threads):
    batch = 128
    model = preact_resnet()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(5)
    xs, ys = torch.rand(8 * batch, 3, 32, 32, generator=g), torch.randint(0, 10, (8 * batch,), generator=g)

    def step(b):
        i = (b % 8) * batch
        opt.zero_grad()
        loss = loss_fn(model(xs[i:i + batch]), ys[i:i + batch])
        loss.backward()
        opt.step()
        return loss.item()

    for b in range(3):
        step(b)
    t0 = time.perf_counter()
    for b in range(batches):
        loss = step(b)
    s = time.perf_counter() - t0
    print(f"pytorch resnet: {batches} batches of {batch} in {s:.3f} s, last loss {loss:.4f}", file=sys.stderr)
    print(json.dumps({"impl": "pytorch", "bench": "resnet", "threads": threads,
                      "parameters": sum(p.numel() for p in model.parameters()), "batch": batch, "batches": batches, "seconds": s,
                      "train_images_per_second": batches * batch / s}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bench", choices=["layers", "bn_cnn", "resnet"])
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.bench == "layers":
        layers(a.threads)
    elif a.bench == "bn_cnn":
        bn_cnn(a.data, a.epochs, a.threads)
    else:
        resnet(a.batches, a.threads)


if __name__ == "__main__":
    main()
