#!/usr/bin/python3
"""Write tests/data/fraud_mlp_v1_reasons.json: expected reason codes of fraud_mlp v1.

Attribution (what the C++ side must reproduce), for one input row x (raw features,
float32 [30], in the order of `inputs` in models/fraud_mlp/model.yaml):

    score            = f(x), the model's output: the fraud probability, AFTER the
                       sigmoid built into the module (the module also standardises
                       x internally with its `mean` and `std` buffers)
    grad_i           = d score / d x_i, the gradient w.r.t. the RAW input (so it
                       includes the 1/std_i of the built-in standardisation and the
                       sigmoid's s * (1 - s))
    contribution_i   = grad_i * (x_i - baseline_i)
    baseline_i       = the training mean of input i: `baseline` in
                       models/fraud_mlp/model.yaml (= the module's `mean` buffer)

Everything is float32: x and the baseline are float32 tensors, the gradient comes
from autograd on the TorchScript module models/fraud_mlp/1/model.pt, and the product
and difference are float32 tensor operations (grad * (x - baseline)). The rows of a
batch are independent, so the gradient of the whole batch comes from ONE backward
pass of sum(scores) (x.requires_grad_(); model(x).sum().backward(); x.grad); at a
ReLU whose input is exactly 0 the gradient is 0 (PyTorch's rule).

Reasons: the features ranked by contribution, largest (most positive) first, ties
broken by the lower input index; "top" holds the first 5. Contributions are signed:
a negative one pushed the score down. They are a first-order (gradient x input)
attribution, so they do not sum to score - f(baseline).

Rows: the first 64 rows of "rows" in tests/data/fraud_mlp_v1_reference.json (their
indices there are in "row_indices"). They include both scores near 0.5 and saturated
ones (>= 0.999, where s * (1 - s) makes every contribution tiny); the script prints
how many rows have a contribution above 1e-3.

Layout (one row object per line):
  {"model": "fraud_mlp", "version": "1", "feature_names": [30 names],
   "baseline": [30 floats], "top_k": 5, "row_indices": [64 ints],
   "rows": [{"features": [30 floats], "score": s, "contributions": [30 floats],
             "top": [{"feature": "V14", "index": 14, "contribution": c}, ...5]}, ...],
   "computed_with": {...}}
All numbers are float32 values written as Python floats (repr), so parsing them as
double and rounding to float gives the float32 values back exactly. Matrix products
sum in an order that depends on the thread count and batch size, so the C++ side
agrees with these to a small tolerance, not bit for bit.

The output is committed; run this again only if the model or the attribution changes:
    /usr/bin/python3 tests/data/make_reasons_reference.py
"""
import json
import os

import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(ROOT, "models", "fraud_mlp", "1", "model.pt")
MODEL_YAML = os.path.join(ROOT, "models", "fraud_mlp", "model.yaml")
REFERENCE = os.path.join(HERE, "fraud_mlp_v1_reference.json")
OUT = os.path.join(HERE, "fraud_mlp_v1_reasons.json")

N_ROWS = 64
TOP_K = 5


def rank(contributions: list[float]) -> list[int]:
    """Input indices by contribution, largest first; ties: lower index first."""
    return sorted(range(len(contributions)), key=lambda i: (-contributions[i], i))


def attribute(module: torch.jit.ScriptModule, x: torch.Tensor, baseline: torch.Tensor):
    """Scores [N] and contributions [N, F] of a float32 batch x [N, F], one backward pass."""
    x = x.detach().clone().requires_grad_(True)
    scores = module(x)
    scores.sum().backward()
    contributions = x.grad * (x.detach() - baseline)
    return scores.detach(), contributions.detach()


def main() -> None:
    torch.set_num_threads(1)
    with open(MODEL_YAML, encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    with open(REFERENCE, encoding="utf-8") as f:
        reference = json.load(f)
    names = meta["inputs"]
    if reference["feature_names"] != names:
        raise SystemExit("reference feature_names differ from model.yaml inputs")

    module = torch.jit.load(MODEL)
    module.eval()
    baseline = torch.tensor(meta["baseline"], dtype=torch.float32)
    if not torch.equal(baseline, module.mean):
        raise SystemExit("model.yaml baseline is not the model's mean buffer")

    row_indices = list(range(N_ROWS))
    x = torch.tensor([reference["rows"][i] for i in row_indices], dtype=torch.float32)
    scores, contributions = attribute(module, x, baseline)

    rows = []
    for features, s, c in zip(x.tolist(), scores.tolist(), contributions.tolist()):
        top = [{"feature": names[i], "index": i, "contribution": c[i]} for i in rank(c)[:TOP_K]]
        rows.append({"features": features, "score": s, "contributions": c, "top": top})

    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    fields = [
        ("model", dumps(meta["name"])),
        ("version", dumps("1")),
        ("feature_names", dumps(names)),
        ("baseline", dumps(baseline.tolist())),
        ("top_k", dumps(TOP_K)),
        ("row_indices", dumps(row_indices)),
        ("rows", "[\n    " + ",\n    ".join(dumps(r) for r in rows) + "\n  ]"),
        ("computed_with", dumps({
            "torch_version": torch.__version__, "device": "cpu",
            "intra_op_threads": torch.get_num_threads(), "batch_rows": len(rows),
            "rows_from": "tests/data/fraud_mlp_v1_reference.json"})),
    ]
    text = "{\n" + ",\n".join(f"  {dumps(k)}: {v}" for k, v in fields) + "\n}\n"
    parsed = json.loads(text)
    if parsed["rows"] != rows or parsed["baseline"] != baseline.tolist():
        raise AssertionError("reasons JSON does not round-trip")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)

    # Summary.
    ref_scores = torch.tensor([reference["scores"][i] for i in row_indices], dtype=torch.float32)
    largest = contributions.max(dim=1).values
    abs_largest = contributions.abs().max(dim=1).values
    mid = (scores >= 0.05) & (scores <= 0.95)
    saturated = (scores >= 0.999) | (scores <= 0.001)
    gaps = []  # gap between consecutive ranks 1..TOP_K+1: how firmly the top-k order is fixed
    for c in contributions.tolist():
        order = rank(c)
        gaps.append(min(c[order[k]] - c[order[k + 1]] for k in range(TOP_K)))
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(text):,} bytes): {len(rows)} rows, top {TOP_K}")
    print(f"scores: {int(mid.sum())} rows in 0.05..0.95, {int((scores > 0.95).sum())} above 0.95, "
          f"{int(saturated.sum())} saturated (>= 0.999 or <= 0.001); "
          f"max |score - reference score| {(scores - ref_scores).abs().max().item():.3g} "
          f"(reference scored in a batch of {reference['scored_with']['batch_rows']})")
    print(f"rows with a contribution > 1e-3: {int((largest > 1e-3).sum())}/{len(rows)}, "
          f"> 1e-2: {int((largest > 1e-2).sum())}; with |contribution| > 1e-3: {int((abs_largest > 1e-3).sum())}")
    print(f"largest contribution per row: median {largest.median().item():.3g}, max {largest.max().item():.3g}; "
          f"in saturated rows at most {largest[saturated].max().item() if saturated.any() else 0.0:.3g}")
    print(f"smallest gap between consecutive top-{TOP_K + 1} contributions: {min(gaps):.3g} "
          f"(median over rows {sorted(gaps)[len(gaps) // 2]:.3g})")
    top1 = {}
    for r in rows:
        top1[r["top"][0]["feature"]] = top1.get(r["top"][0]["feature"], 0) + 1
    print("top reason:", ", ".join(f"{k} {v}" for k, v in sorted(top1.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
