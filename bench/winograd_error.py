#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Winograd transforms for F(m, r) from the Toom-Cook construction, checked exactly in rationals, and the float32
rounding error of the 2-D algorithm against float64 (and of the direct float32 sum, for scale).

    python3 bench/winograd_error.py                # F(2x2, 5x5) and F(4x4, 5x5): the figures in docs/performance.md
    python3 bench/winograd_error.py --matrices     # also print A^T, G and B^T as fractions

Needs numpy (python3-numpy). The matrices are those of kernels/conv2d_winograd.hpp and conv2d_winograd45.hpp up to
the sign of a row of G and the same row of B^T (which leaves every product the same). Each trial: C input channels
of an (m + r - 1)^2 input tile of |N(0, 1)| values (post-ReLU-like) and r x r weights of N(0, 0.05^2); the error
is the largest absolute difference over the m x m outputs divided by the outputs' RMS (float64 reference).
"""
import argparse
from fractions import Fraction as F

import numpy as np


def poly_mul(p, q):
    out = [F(0)] * (len(p) + len(q) - 1)
    for i, x in enumerate(p):
        for j, y in enumerate(q):
            out[i + j] += x * y
    return out


def toom_cook(points, m, r):
    """A^T [m, a], G [a, r], B^T [a, a] for a = m + r - 1 finite points plus infinity."""
    a = m + r - 1
    assert len(points) == a - 1
    M = [F(1)]
    for p in points:
        M = poly_mul(M, [-p, F(1)])
    AT = [[F(0)] * a for _ in range(m)]
    G = [[F(0)] * r for _ in range(a)]
    BT = [[F(0)] * a for _ in range(a)]
    for i, p in enumerate(points):
        for k in range(m):
            AT[k][i] = p ** k
        N = F(1)
        for j, q in enumerate(points):
            if j != i:
                N *= p - q
        for k in range(r):
            G[i][k] = p ** k / N
        acc, quotient = F(0), []  # M(x) / (x - p) by synthetic division
        for c in M[::-1][:-1]:
            acc = acc * p + c
            quotient.append(acc)
        for k, c in enumerate(quotient[::-1]):
            BT[i][k] = c
    AT[m - 1][a - 1] = F(1)
    G[a - 1][r - 1] = F(1)
    BT[a - 1] = list(M)
    return AT, G, BT


def check_exact(AT, G, BT, m, r, rng):
    """A^T (G g . B^T d) equals the 1-D correlation of d and g exactly (random integer vectors)."""
    for _ in range(20):
        d = [F(int(v)) for v in rng.integers(-9, 10, m + r - 1)]
        g = [F(int(v)) for v in rng.integers(-9, 10, r)]
        u = [sum(G[i][k] * g[k] for k in range(r)) for i in range(len(G))]
        v = [sum(BT[i][k] * d[k] for k in range(len(d))) for i in range(len(BT))]
        y = [sum(AT[o][i] * u[i] * v[i] for i in range(len(u))) for o in range(m)]
        assert y == [sum(d[o + k] * g[k] for k in range(r)) for o in range(m)], "transform is not exact"


def errors(AT, G, BT, m, r, trials, channels, rng):
    a = m + r - 1
    AT32, G32, BT32 = (np.array(X, dtype=np.float64).astype(np.float32) for X in (AT, G, BT))
    wino, direct = [], []
    for _ in range(trials):
        d = np.abs(rng.standard_normal((channels, a, a))).astype(np.float32)
        g = (rng.standard_normal((channels, r, r)) * 0.05).astype(np.float32)
        ref = np.array([[np.sum(d[:, i:i + r, j:j + r].astype(np.float64) * g.astype(np.float64)) for j in range(m)] for i in range(m)])
        U = np.einsum("ik,ckl,jl->cij", G32, g, G32).astype(np.float32)
        V = np.einsum("ik,ckl,jl->cij", BT32, d, BT32).astype(np.float32)
        M = np.zeros((a, a), np.float32)
        for c in range(channels):
            M = (M + U[c] * V[c]).astype(np.float32)
        y = (AT32 @ M @ AT32.T).astype(np.float32)
        yd = np.zeros((m, m), np.float32)
        for i in range(m):
            for j in range(m):
                s = np.float32(0)
                for c in range(channels):
                    for k in range(r):
                        for l in range(r):
                            s = np.float32(s + d[c, i + k, j + l] * g[c, k, l])
                yd[i, j] = s
        rms = np.sqrt(np.mean(ref ** 2))
        wino.append(np.max(np.abs(y - ref)) / rms)
        direct.append(np.max(np.abs(yd - ref)) / rms)
    return np.median(wino), np.max(wino), np.median(direct), np.max(direct)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrices", action="store_true", help="print A^T, G and B^T as fractions")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--channels", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for name, points, m, r in (("F(2x2, 5x5)", [0, 1, -1, 2, -2], 2, 5),
                               ("F(4x4, 5x5)", [0, 1, -1, 2, -2, F(1, 2), F(-1, 2)], 4, 5)):
        AT, G, BT = toom_cook([F(p) for p in points], m, r)
        check_exact(AT, G, BT, m, r, rng)
        if args.matrices:
            for label, X in (("A^T", AT), ("G", G), ("B^T", BT)):
                print(f"{name} {label}:")
                for row in X:
                    print("   ", " ".join(f"{str(v):>6}" for v in row))
        wm, wx, dm, dx = errors(AT, G, BT, m, r, args.trials, args.channels, rng)
        print(f"{name}: exact in rationals; float32 error / output RMS over {args.trials} trials of "
              f"{args.channels} channels: median {wm:.2e}, max {wx:.2e} (direct float32 sum: median {dm:.2e}, max {dx:.2e})")


if __name__ == "__main__":
    main()
