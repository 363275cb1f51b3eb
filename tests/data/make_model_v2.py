#!/usr/bin/python3
"""Write tests/data/fraud_mlp_v2/model.pt: a second version of fraud_mlp for the tests.

It is models/fraud_mlp/1/model.pt (the TorchScript module that tools/train_model.py
exports with torch.jit.script) with its weights changed deterministically:

  torch.manual_seed(2); for each Linear layer in order (net.0, net.2, net.4):
      weight += N(0, 0.05) noise (torch.randn_like(weight) * 0.05)
  and the final layer's bias (net.4.bias) += 1.0 (with +0.5 no decision at the
  threshold 0.98 changed on the reference rows; +1.0 flags two more of them).

Everything else is v1's: the same code (raw float32 [N, 30] in, fraud probability
float32 [N] out, standardisation and sigmoid built in), the same `mean` and `std`
buffers (so the baseline in models/fraud_mlp/model.yaml holds for v2 too), and the
same model.yaml metadata. Only the scores differ, clearly, so tests can tell which
version scored a request (e.g. across a hot reload). The script prints how much they
differ on the inputs of tests/data/fraud_mlp_v1_reference.json.

The output is committed; run this again only to change the model:
    /usr/bin/python3 tests/data/make_model_v2.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
V1 = os.path.join(ROOT, "models", "fraud_mlp", "1", "model.pt")
OUT = os.path.join(HERE, "fraud_mlp_v2", "model.pt")
REFERENCE = os.path.join(HERE, "fraud_mlp_v1_reference.json")

SEED = 2
WEIGHT_NOISE_STD = 0.05
FINAL_BIAS_SHIFT = 1.0
THRESHOLD = 0.98  # models/fraud_mlp/model.yaml


def fix_hash_seed() -> None:
    """Re-runs this script with PYTHONHASHSEED=0, as tools/train_model.py does, so that
    TorchScript writes its constants in the same order and the file's bytes repeat."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]])


def main() -> None:
    torch.set_num_threads(1)
    module = torch.jit.load(V1)
    module.eval()
    names = [name for name, _ in module.named_parameters()]
    linears = sorted({name.rsplit(".", 1)[0] for name in names})  # net.0, net.2, net.4
    params = dict(module.named_parameters())

    torch.manual_seed(SEED)
    with torch.no_grad():
        for layer in linears:
            weight = params[layer + ".weight"]
            weight.add_(torch.randn_like(weight) * WEIGHT_NOISE_STD)
        params[linears[-1] + ".bias"].add_(FINAL_BIAS_SHIFT)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    torch.jit.save(module, OUT)

    # Check what was written against v1.
    v1 = torch.jit.load(V1)
    v2 = torch.jit.load(OUT)
    v1.eval()
    v2.eval()
    buffers = dict(v2.named_buffers())
    assert set(buffers) == {"mean", "std"}, sorted(buffers)
    assert torch.equal(buffers["mean"], v1.mean) and torch.equal(buffers["std"], v1.std)
    assert [n for n, _ in v2.named_parameters()] == names

    with open(REFERENCE, encoding="utf-8") as f:
        reference = json.load(f)
    x = torch.tensor(reference["rows"], dtype=torch.float32)
    with torch.no_grad():
        s1, s2 = v1(x), v2(x)
    assert s2.shape == s1.shape == (len(x),) and s2.dtype == torch.float32
    assert s1.tolist() == reference["scores"], "v1 no longer scores its reference rows as recorded"
    diff = (s2 - s1).abs()
    flagged1, flagged2 = s1 >= THRESHOLD, s2 >= THRESHOLD
    changed = int((flagged1 != flagged2).sum())
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({os.path.getsize(OUT):,} bytes)")
    print(f"on the {len(x)} reference rows: mean |v2 - v1| {diff.mean().item():.4f}, "
          f"max {diff.max().item():.4f}, median {diff.median().item():.4f}")
    print(f"at threshold {THRESHOLD}: v1 flags {int(flagged1.sum())}, v2 flags {int(flagged2.sum())}, "
          f"{changed} decisions differ "
          f"({int((flagged2 & ~flagged1).sum())} newly flagged, {int((flagged1 & ~flagged2).sum())} no longer)")
    if diff.mean().item() <= 0.01 or changed == 0:
        raise SystemExit("v2 does not differ enough from v1")


if __name__ == "__main__":
    fix_hash_seed()
    main()
