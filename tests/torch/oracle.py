#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch as the oracle for eigencnn's layers (tests/test_torch.cpp writes the cases).

usage: oracle.py DIR

DIR/cases.txt has one case per line: name, mode ("train" or "eval") and the model's layer specs as JSON,
separated by tabs. DIR/<name>/ holds raw little-endian float32 files: x.bin and dy.bin (with their shapes
in x.shape and dy.shape, one line of integers each), param.<name>.bin and buf.<name>.bin for every entry
of the model's state_dict (PyTorch's names). For each case this script builds the same nn.Sequential,
loads that state, runs forward in the given mode and backward with dy, and writes out.y.bin, out.dx.bin,
grad.<name>.bin per parameter and after.<name>.bin per buffer (its value after the forward).
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, body, shortcut):
        super().__init__()
        self.body = nn.Sequential(*body)
        self.shortcut = nn.Sequential(*shortcut)  # empty: the identity

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


def build(spec):
    t, a = spec["type"], spec["args"]
    if t == "Conv2d":
        return nn.Conv2d(a[0], a[1], a[2], stride=a[3], padding=a[4], bias=bool(a[5]) if len(a) > 5 else True)
    if t == "Linear":
        return nn.Linear(a[0], a[1], bias=bool(a[2]))
    if t == "BatchNorm2d":
        return nn.BatchNorm2d(a[0], eps=a[1], momentum=a[2])
    if t == "BatchNorm1d":
        return nn.BatchNorm1d(a[0], eps=a[1], momentum=a[2])
    if t == "Dropout":
        return nn.Dropout(a[0])
    if t == "AvgPool2d":
        return nn.AvgPool2d(a[0], stride=a[1], padding=a[2])
    if t == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(a[0])
    if t == "MaxPool2d":
        return nn.MaxPool2d(a[0], stride=a[1])
    if t == "LeakyReLU":
        return nn.LeakyReLU(a[0])
    if t == "Softmax":
        return nn.Softmax(dim=1)
    if t == "LogSoftmax":
        return nn.LogSoftmax(dim=1)
    if t in ("ReLU", "Sigmoid", "Tanh", "Flatten"):
        return getattr(nn, t)()
    if t == "Residual":
        layers = [build(c) for c in spec["children"]]
        return Residual(layers[: a[0]], layers[a[0]:])
    raise ValueError("oracle.py: no PyTorch module for layer type " + t)


def read(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype="<f4").reshape(shape).copy())


def shape_of(path):
    with open(path) as f:
        return [int(v) for v in f.read().split()]


def run_case(root, name, mode, specs):
    d = os.path.join(root, name)
    model = nn.Sequential(*[build(s) for s in specs])
    state = {}
    for key, value in model.state_dict().items():
        kind = "buf" if key in dict(model.named_buffers()) else "param"
        t = read(os.path.join(d, "%s.%s.bin" % (kind, key)), list(value.shape))
        state[key] = t.to(value.dtype)
    model.load_state_dict(state)
    model.train(mode == "train")
    x = read(os.path.join(d, "x.bin"), shape_of(os.path.join(d, "x.shape"))).requires_grad_(True)
    dy = read(os.path.join(d, "dy.bin"), shape_of(os.path.join(d, "dy.shape")))
    y = model(x)
    y.backward(dy)
    y.detach().numpy().astype("<f4").tofile(os.path.join(d, "out.y.bin"))
    x.grad.numpy().astype("<f4").tofile(os.path.join(d, "out.dx.bin"))
    for key, p in model.named_parameters():
        p.grad.numpy().astype("<f4").tofile(os.path.join(d, "grad.%s.bin" % key))
    for key, b in model.named_buffers():
        b.detach().to(torch.float32).numpy().astype("<f4").tofile(os.path.join(d, "after.%s.bin" % key))


def main():
    root = sys.argv[1]
    torch.set_num_threads(1)
    with open(os.path.join(root, "cases.txt")) as f:
        for line in f:
            if line.strip():
                name, mode, specs = line.rstrip("\n").split("\t")
                run_case(root, name, mode, json.loads(specs))
    print("oracle.py: torch %s ran the cases in %s" % (torch.__version__, root))


if __name__ == "__main__":
    main()
