# SPDX-License-Identifier: MIT
"""PyTorch as the oracle for eigencnn (driven by tests/torch_oracle.sh; run with Debian's /usr/bin/python3).

torch 1.13 has no safetensors package: load_safetensors/save_safetensors below read and write the format
(u64 little-endian header length, JSON header, raw little-endian data) in a few lines.

  torch_oracle.py gradients DIR              compare PyTorch with what `torch_helper gradients DIR` wrote
  torch_oracle.py convert_out DIR            DIR/model.safetensors as F16, BF16 and F64 (model.f16.safetensors, ...)
  torch_oracle.py convert_check DIR          eigencnn's resaved conversions equal PyTorch's .float(), bitwise
  torch_oracle.py train MNIST N OUT PRED     train the notebook's model in PyTorch on N images, save OUT,
                                             write its test-set predictions to PRED (one byte each)
  torch_oracle.py predict MODEL MNIST PRED   load an eigencnn-saved MODEL, write PyTorch's predictions to PRED
  torch_oracle.py compare PRED_A PRED_B MIN  at least MIN of the predictions identical
  torch_oracle.py bn_model DIR               the seed model with BatchNorm2d after each conv (eigencnn's mnist_cnn_bn),
                                             trained statistics and random affine weights, saved from its state_dict
                                             (DIR/bn.safetensors, num_batches_tracked as I64), with 8 images and its
                                             eval-mode logits (DIR/bn_io.safetensors) for `torch_helper model_file DIR`
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = bytearray(raw[8 + n:])
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        size = torch.empty(0, dtype=dtype).element_size()
        flat = torch.frombuffer(data, dtype=dtype, count=(end - begin) // size, offset=begin) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = flat.reshape(info["shape"]).clone()
    return out


def save_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        b = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def mnist_cnn():
    """The notebook's model, the same nn.Sequential as eigencnn's mnist_cnn()."""
    return nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def read_idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            raw = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            dims = struct.unpack(">" + "I" * raw[3], raw[4:4 + 4 * raw[3]])
            return torch.frombuffer(bytearray(raw[4 + 4 * raw[3]:]), dtype=torch.uint8).reshape(dims)
    sys.exit(f"torch_oracle: no {path}[.gz]")


def mnist(folder, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(f"{folder}/{prefix}-images-idx3-ubyte").float().div(255).unsqueeze(1)  # as eigencnn: bytes / 255
    return images, read_idx(f"{folder}/{prefix}-labels-idx1-ubyte").long()


def rel(a, b):
    """max |a - b| / max |b|: the error relative to the tensor's scale."""
    return (a.double() - b.double()).abs().max().item() / max(b.double().abs().max().item(), 1e-30)


def gradients(folder):
    weights, io, grads = (load_safetensors(f"{folder}/{f}.safetensors") for f in ("model", "io", "grads"))
    worst, report = 0.0, []
    for dtype in (torch.float64, torch.float32):  # float64: the exact answer; float32: PyTorch's own rounding
        model = mnist_cnn().to(dtype)
        missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in weights.items()}, strict=True)
        x = io["x"].to(dtype).requires_grad_(True)
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, io["labels"].long())
        loss.backward()
        checks = [("logits", io["logits"], logits), ("loss", io["loss"], loss.reshape(1)), ("dloss/dinput", io["dx"], x.grad)]
        checks += [(f"dloss/d{n}", grads[n], p.grad) for n, p in model.named_parameters()]
        for name, ours, theirs in checks:
            r = rel(ours, theirs.detach())
            report.append(f"  vs torch {str(dtype)[6:]:8} {name:18} {list(ours.shape)!s:18} relative error {r:.2e}")
            if dtype == torch.float64:
                worst = max(worst, r)
    print("\n".join(report))
    print(f"worst relative error against float64 PyTorch: {worst:.2e} (limit 1e-5)")
    return 0 if worst <= 1e-5 else 1


def predictions(model, images):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])


def write_predictions(model, folder, out):
    images, labels = mnist(folder, "test")
    pred = predictions(model, images)
    open(out, "wb").write(bytes(pred.to(torch.uint8).tolist()))
    print(f"pytorch: {len(pred)} test images, accuracy {(pred == labels).float().mean().item():.4f}")


def train(folder, n, out, pred_out):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    images, labels = mnist(folder, "train")
    images, labels = images[:n], labels[:n]
    model = mnist_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(n)
    model.train()
    for i in range(0, n, 100):
        idx = order[i:i + 100]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(images[idx]), labels[idx])
        loss.backward()
        opt.step()
    print(f"pytorch: trained 1 epoch on {n} images, last batch loss {loss.item():.4f}")
    save_safetensors(out, model.state_dict(), {"trained_by": "pytorch"})
    write_predictions(model, folder, pred_out)
    return 0


def convert_out(folder):
    """Write the model's weights as F16, BF16 and F64 for `torch_helper resave` to read."""
    weights = load_safetensors(f"{folder}/model.safetensors")
    for name, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16), ("f64", torch.float64)):
        save_safetensors(f"{folder}/model.{name}.safetensors", {k: v.to(dtype) for k, v in weights.items()})
    return 0


def convert_check(folder):
    """eigencnn's conversion of each file (resaved as F32) must be bitwise PyTorch's .float()."""
    bad = 0
    for name in ("f16", "bf16", "f64"):
        theirs = load_safetensors(f"{folder}/model.{name}.safetensors")
        ours = load_safetensors(f"{folder}/model.{name}.resaved.safetensors")
        differ = sum(int((ours[k] != theirs[k].float()).sum()) for k in theirs)
        total = sum(v.numel() for v in theirs.values())
        print(f"{name.upper():5}: {total} weights converted by eigencnn, {differ} differ from PyTorch's .float()")
        bad += differ
    return 0 if bad == 0 else 1


def predict(model_path, folder, pred_out):
    model = mnist_cnn()
    state = load_safetensors(model_path)
    model.load_state_dict(state, strict=True)
    write_predictions(model, folder, pred_out)
    return 0


def bn_model(folder):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    with torch.no_grad():
        for _ in range(3):  # running statistics of some batches, as training leaves them
            model(torch.rand(32, 1, 28, 28))
        for bn in (model[1], model[5]):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
        model.eval()
        x = torch.rand(8, 1, 28, 28)
        logits = model(x)
    save_safetensors(f"{folder}/bn.safetensors", model.state_dict(), {"format": "pt"})
    save_safetensors(f"{folder}/bn_io.safetensors", {"x": x, "logits": logits})
    print(f"PyTorch: mnist_cnn_bn saved, num_batches_tracked = {int(model[1].num_batches_tracked)}")
    return 0


def compare(a, b, minimum):
    pa, pb = open(a, "rb").read(), open(b, "rb").read()
    same = sum(x == y for x, y in zip(pa, pb))
    print(f"{same} of {len(pa)} predictions identical ({os.path.basename(a)} vs {os.path.basename(b)}; at least {minimum} required)")
    return 0 if len(pa) == len(pb) == 10000 and same >= int(minimum) else 1


if __name__ == "__main__":
    commands = {"gradients": gradients, "convert_out": convert_out, "convert_check": convert_check, "train": lambda f, n, o, p: train(f, int(n), o, p), "predict": predict, "compare": compare, "bn_model": bn_model}
    sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
