#!/usr/bin/python3
"""Train vigil's fraud-scoring MLP and export it to the model repository.

Reads the labelled credit card transactions (gzip CSV with the columns
``Time,V1..V28,Amount,Class``, sorted by ``Time``), splits them by time (the
first 80 % of the rows train, the last 20 % validate), trains a small
multilayer perceptron and writes:

  <out>/<name>/<version>/model.pt        TorchScript module
  <out>/<name>/model.yaml                model metadata read by the service
  <out>/<name>/sample/transactions.csv   real validation transactions for load tests
  <out>/<name>/sample/NOTICE.md          attribution and licence of that sample
  tests/data/<name>_v<version>_reference.json
                                         raw inputs + expected scores, so the C++
                                         side can check it scores exactly like Python

The exported module takes RAW features: a float32 tensor [N, 30] with the
columns Time, V1, ..., V28, Amount (in that order). Standardisation (mean and
std of the training split) and the final sigmoid are built in, and the module
returns the fraud probabilities as a float32 tensor of shape [N].

Examples:
  /usr/bin/python3 tools/train_model.py
  /usr/bin/python3 tools/train_model.py --hidden 1024,1024 --name fraud_mlp_wide \\
      --no-reference --no-sample

The data is an extract of the "Credit Card Fraud Detection" dataset (ULB and
Worldline), ODbL 1.0; see ../shared/data/README.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import os
import random
import struct
import sys
import time
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import torch
import yaml
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "creditcard-subset-train.csv.gz"

FEATURE_NAMES = ["Time"] + [f"V{i}" for i in range(1, 29)] + ["Amount"]
LABEL_NAME = "Class"
CSV_COLUMNS = FEATURE_NAMES + [LABEL_NAME]

ATTRIBUTION = (
    "Credit Card Fraud Detection dataset, Machine Learning Group – ULB and Worldline "
    "(Dal Pozzolo et al., 2015), ODbL 1.0"
)
DATA_SOURCE = (
    'Subset of the "Credit Card Fraud Detection" dataset (Kaggle mlg-ulb/creditcardfraud): '
    "all frauds plus 10 random genuine transactions per fraud, sorted by Time; "
    "see shared/data/README.md"
)

REFERENCE_ROWS = 400
REFERENCE_MAX_FRAUD_SHARE = 0.5
SAMPLE_ROWS = 1000


# --------------------------------------------------------------------------- data


@dataclass
class Transactions:
    """Rows of the source CSV, kept both as text (for verbatim copies) and as numbers."""

    lines: list[str]  # the CSV lines as written in the source, without line ending
    features: list[list[float]]  # float64 values, FEATURE_NAMES order
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def slice(self, start: int, stop: int) -> "Transactions":
        return Transactions(self.lines[start:stop], self.features[start:stop], self.labels[start:stop])

    def take(self, indices: list[int]) -> "Transactions":
        return Transactions(
            [self.lines[i] for i in indices],
            [self.features[i] for i in indices],
            [self.labels[i] for i in indices],
        )

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Features as float32 [N, 30] (each float64 value rounded once) and labels as float32 [N]."""
        x = torch.tensor(self.features, dtype=torch.float32)
        y = torch.tensor(self.labels, dtype=torch.float32)
        return x, y


def read_transactions(path: Path) -> tuple[Transactions, str]:
    """Reads the gzip CSV; returns the rows and the sha256 of the (compressed) file."""
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode("utf-8")
    lines = text.splitlines()
    header = lines[0].split(",")
    if header != CSV_COLUMNS:
        raise SystemExit(f"{path}: unexpected header {lines[0]!r}; expected {','.join(CSV_COLUMNS)}")

    data = Transactions([], [], [])
    for line_no, fields in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), start=2):
        if len(fields) != len(CSV_COLUMNS):
            raise SystemExit(f"{path}:{line_no}: expected {len(CSV_COLUMNS)} fields, got {len(fields)}")
        label = int(float(fields[-1]))
        if label not in (0, 1):
            raise SystemExit(f"{path}:{line_no}: Class must be 0 or 1, got {fields[-1]!r}")
        data.lines.append(lines[line_no - 1])
        data.features.append([float(v) for v in fields[:-1]])
        data.labels.append(label)

    times = [row[0] for row in data.features]
    if any(a > b for a, b in zip(times, times[1:])):
        raise SystemExit(f"{path}: rows are not sorted by Time")
    return data, hashlib.sha256(raw).hexdigest()


def pick_rows(labels: list[int], n_rows: int, max_fraud_share: float, rng: random.Random) -> list[int]:
    """Indices of up to n_rows rows, in their original (time) order.

    Frauds come first (all of them, unless they would exceed max_fraud_share of
    n_rows), the remaining places go to genuine rows drawn at random.
    """
    if len(labels) <= n_rows:
        return list(range(len(labels)))
    frauds = [i for i, label in enumerate(labels) if label == 1]
    genuine = [i for i, label in enumerate(labels) if label == 0]
    n_frauds = min(len(frauds), int(n_rows * max_fraud_share))
    chosen = rng.sample(frauds, n_frauds) if n_frauds < len(frauds) else frauds
    chosen = chosen + rng.sample(genuine, min(len(genuine), n_rows - n_frauds))
    return sorted(chosen)


# -------------------------------------------------------------------------- model


class FraudMLP(nn.Module):
    """Raw features float32 [N, F] -> fraud probability float32 [N].

    The standardisation of the inputs (training mean and std, as buffers) and
    the final sigmoid are part of the module, so callers pass raw values.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, hidden: list[int]):
        super().__init__()
        self.n_features = int(mean.numel())
        # A constant feature has std 0: leave it centred but unscaled.
        safe_std = torch.where(std > 1e-12, std, torch.ones_like(std))
        self.register_buffer("mean", mean.to(torch.float32).clone())
        self.register_buffer("std", safe_std.to(torch.float32).clone())

        layers: list[nn.Module] = []
        width = self.n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features [N, F] -> logits [N] (used for training)."""
        return self.net((x - self.mean) / self.std).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.size(1) != self.n_features:
            raise ValueError("fraud model: expected a float32 tensor [N, inputs] of raw features")
        return torch.sigmoid(self.logits(x))


def train(model: FraudMLP, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    """Mini-batch Adam on BCE-with-logits; frauds are weighted by n_genuine / n_fraud."""
    n_pos = float(y.sum())
    n_neg = float(len(y)) - n_pos
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(n_neg / n_pos))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    shuffle = torch.Generator().manual_seed(args.seed)

    model.train()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(y), generator=shuffle)
        total = 0.0
        for start in range(0, len(y), args.batch_size):
            batch = order[start : start + args.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model.logits(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
            total += float(loss) * len(batch)
        if epoch == 1 or epoch % 10 == 0 or epoch == args.epochs:
            print(f"  epoch {epoch:3d}/{args.epochs}  train loss {total / len(y):.4f}")
    model.eval()


def score(module: torch.jit.ScriptModule, features: list[list[float]]) -> list[float]:
    """Scores rows in one batch; returns the float32 results as Python floats."""
    with torch.no_grad():
        out = module(torch.tensor(features, dtype=torch.float32))
    return [float(v) for v in out.tolist()]


# ------------------------------------------------------------------------ metrics


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks of values; tied values all get the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc_auc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve (Mann-Whitney U statistic, ties count one half)."""
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = sum(r for r, label in zip(average_ranks(scores), labels) if label == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def operating_points(scores: list[float], labels: list[int]) -> list[tuple[float, int, int]]:
    """(threshold, true positives, false positives) for "fraud if score >= threshold",
    one per distinct score, highest threshold first."""
    pairs = sorted(zip(scores, labels), key=lambda p: p[0], reverse=True)
    points = []
    tp = fp = 0
    for i, (value, label) in enumerate(pairs):
        tp += label
        fp += 1 - label
        if i + 1 == len(pairs) or pairs[i + 1][0] != value:
            points.append((value, tp, fp))
    return points


def average_precision(scores: list[float], labels: list[int]) -> float:
    """PR-AUC as average precision: sum over thresholds of (recall step) * precision."""
    n_pos = sum(labels)
    if n_pos == 0:
        return math.nan
    ap = previous_recall = 0.0
    for _, tp, fp in operating_points(scores, labels):
        recall = tp / n_pos
        ap += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
    return ap


@dataclass
class Threshold:
    value: float
    precision: float
    recall: float
    f1: float
    flagged: int


def to_float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def readable_threshold(upper: float, lower: float) -> float:
    """Shortest decimal t with lower < t <= upper, also when the caller rounds t to
    float32. Every score classifies the same with t as with upper."""
    for digits in range(1, 18):
        t = float(Decimal(upper).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_FLOOR))
        if t > lower and to_float32(t) > lower:
            return t
    return upper


def best_f1_threshold(scores: list[float], labels: list[int]) -> Threshold:
    """The "fraud if score >= threshold" cut that maximises F1 (highest cut on ties)."""
    n_pos = sum(labels)
    points = operating_points(scores, labels)
    best, best_i = None, 0
    for i, (value, tp, fp) in enumerate(points):
        precision = tp / (tp + fp)
        recall = tp / n_pos if n_pos else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        if best is None or f1 > best.f1:
            best, best_i = Threshold(value, precision, recall, f1, tp + fp), i
    lower = points[best_i + 1][0] if best_i + 1 < len(points) else -math.inf
    if lower > -math.inf:
        best.value = readable_threshold(best.value, lower)
    return best


# ------------------------------------------------------------------------ outputs


def yaml_block(mapping: dict, flow_leaves: bool = True) -> str:
    """Top-level keys as block YAML; inner lists of scalars inline when flow_leaves."""
    text = ""
    for key, value in mapping.items():
        nested = isinstance(value, (dict, list))
        text += yaml.safe_dump(
            {key: value},
            sort_keys=False,
            allow_unicode=True,
            width=1000,
            default_flow_style=None if nested and flow_leaves else False,
        )
    return text


def write_model_yaml(path: Path, doc: dict, command: str, validation: Transactions, val_fraction: float) -> None:
    validation_fraud_share = sum(validation.labels) / len(validation)
    header = (
        "# Generated by tools/train_model.py; do not edit by hand, re-run the script instead:\n"
        f"#   {command}\n"
    )
    head = {k: doc[k] for k in ("name", "description", "platform")}
    io_spec = {k: doc[k] for k in ("input_dtype", "output")}
    text = (
        header
        + yaml_block(head)
        + "\n# Raw feature values, in this order (float32 [N, 30]); standardisation is inside the model.\n"
        + yaml_block({"inputs": doc["inputs"]}, flow_leaves=False)
        + yaml_block(io_spec)
        + "\n# Training mean of each input, in input order: the baseline of reason codes\n"
        + "# (gradient x (input - baseline)).\n"
        + yaml_block({"baseline": doc["baseline"]}, flow_leaves=False)
        + "\n# Flag a transaction as fraud when fraud_probability >= threshold. Chosen to maximise F1 on\n"
        + f"# the validation split, where {validation_fraud_share * 100:.1f} % of the rows are frauds (about 0.17 % in real\n"
        + "# traffic): precision on live traffic will be much lower than on this data.\n"
        + yaml_block({"threshold": doc["threshold"]})
        + f"\n# Metrics on the validation split (the last {val_fraction:.0%} of the rows by Time).\n"
        + yaml_block({"training": doc["training"]})
        + "\n"
        + yaml_block({k: doc[k] for k in ("data_source", "license")})
    )
    if yaml.safe_load(text) != doc:
        raise AssertionError("model.yaml does not round-trip")
    path.write_text(text, encoding="utf-8")


def write_reference(path: Path, name: str, version: int, rows: Transactions, scores: list[float]) -> None:
    """JSON with one row per line. Python floats are written with repr, so parsing
    them as double gives back exactly the values used here."""

    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    def array(items: list[str]) -> str:
        return "[\n    " + ",\n    ".join(items) + "\n  ]"

    fields = [
        ("model_name", dumps(name)),
        ("model_version", dumps(version)),
        ("feature_names", dumps(FEATURE_NAMES)),
        ("rows", array([dumps(row) for row in rows.features])),
        ("scores", array([dumps(s) for s in scores])),
        ("labels", dumps(rows.labels)),
        # Matrix products sum in an order that depends on the thread count and batch
        # size, so scores agree bit for bit only under the same conditions.
        ("scored_with", dumps({
            "torch_version": torch.__version__, "device": "cpu",
            "intra_op_threads": torch.get_num_threads(), "batch_rows": len(scores)})),
        ("license", dumps(ATTRIBUTION)),
        ("notice", dumps(
            "rows are an extract of the dataset (validation split, values as in the source CSV); "
            "see models/" + name + "/sample/NOTICE.md")),
    ]
    text = "{\n" + ",\n".join(f"  {dumps(key)}: {value}" for key, value in fields) + "\n}\n"
    parsed = json.loads(text)
    if parsed["rows"] != rows.features or parsed["scores"] != scores:
        raise AssertionError("reference JSON does not round-trip")
    path.write_text(text, encoding="utf-8")


def write_sample(directory: Path, rows: Transactions, validation: Transactions, source: str,
                 val_fraction: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if len(rows) == len(validation):
        selection = "every row of that split"
    else:
        selection = "all frauds of that split plus genuine rows drawn at random"
    csv_text = ",".join(CSV_COLUMNS) + "\n" + "".join(line + "\n" for line in rows.lines)
    (directory / "transactions.csv").write_text(csv_text, encoding="utf-8")
    notice = f"""# Sample transactions – notice

`transactions.csv` holds {len(rows)} real, anonymised credit card transactions
({sum(rows.labels)} of them frauds) for load generators and smoke tests. It was
written by `tools/train_model.py` from the validation split (the last {val_fraction:.0%} of
the rows by `Time`) of `{source}`:
{selection}, in time order. Every value is copied as it is in the source
file; the columns are `{",".join(CSV_COLUMNS)}`.

Frauds are far more common here than in real traffic (about 0.17 %).

## Source

"Credit Card Fraud Detection" dataset, from the Machine Learning Group (MLG) of the
Université Libre de Bruxelles (ULB), collected in a research collaboration with
Worldline; distributed on Kaggle as `mlg-ulb/creditcardfraud`.

Andrea Dal Pozzolo, Olivier Caelen, Reid A. Johnson and Gianluca Bontempi,
"Calibrating Probability with Undersampling for Unbalanced Classification",
IEEE Symposium Series on Computational Intelligence (SSCI), 2015.

## Licence

This sample is a database adapted from that dataset. The dataset is under the Open
Database License (ODbL) v1.0, and its contents under the Database Contents License
(DbCL) v1.0, and so is this sample. You may use, share and adapt it if you:

- give attribution: "{ATTRIBUTION}";
- keep this notice with any copy;
- release any database adapted from it that you share publicly under ODbL as well.

Licence text: https://opendatacommons.org/licenses/odbl/1-0/
"""
    (directory / "NOTICE.md").write_text(notice, encoding="utf-8")


# --------------------------------------------------------------------------- main


def parse_hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes, got {text!r}")
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive integers, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="gzip CSV with Time,V1..V28,Amount,Class")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models", help="model repository directory")
    parser.add_argument("--name", default="fraud_mlp", help="model name (folder under --out)")
    parser.add_argument("--version", type=int, default=1, help="model version (numbered subfolder)")
    parser.add_argument("--hidden", type=parse_hidden, default=[64, 32], help="hidden layer sizes, e.g. 1024,1024")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="Adam weight decay")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--val-fraction", type=float, default=0.2, help="last fraction of rows (by time) to validate on")
    parser.add_argument("--reference", type=Path, default=None,
                        help="reference JSON path (default: tests/data/<name>_v<version>_reference.json)")
    parser.add_argument("--no-reference", action="store_true", help="do not write the reference JSON")
    parser.add_argument("--no-sample", action="store_true", help="do not write sample/transactions.csv")
    args = parser.parse_args(argv)
    if args.reference is None:
        args.reference = REPO_ROOT / "tests" / "data" / f"{args.name}_v{args.version}_reference.json"
    if not 0.0 < args.val_fraction < 1.0:
        parser.error("--val-fraction must be between 0 and 1")
    return args


def display_path(path: Path) -> str:
    """Path relative to the repository root when it is inside it or next to it, else absolute."""
    relative = os.path.relpath(path.resolve(), REPO_ROOT)
    return str(path.resolve()) if relative.startswith(os.path.join(os.pardir, os.pardir)) else relative


def deterministic(seed: int) -> None:
    """The same arguments give the same model: seeded, one thread, deterministic kernels."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    deterministic(args.seed)

    data, data_sha256 = read_transactions(args.data)
    n_train = int(len(data) * (1.0 - args.val_fraction))
    train_rows, val_rows = data.slice(0, n_train), data.slice(n_train, len(data))
    print(f"data: {display_path(args.data)} ({len(data)} rows, sha256 {data_sha256[:12]}…)")
    print(f"split by time: train {len(train_rows)} rows ({sum(train_rows.labels)} frauds), "
          f"validation {len(val_rows)} rows ({sum(val_rows.labels)} frauds)")
    if sum(train_rows.labels) == 0 or sum(val_rows.labels) == 0:
        raise SystemExit("both splits need at least one fraud")

    x_train, y_train = train_rows.tensors()
    x64 = x_train.double()
    model = FraudMLP(x64.mean(dim=0), x64.std(dim=0), args.hidden)
    print(f"training MLP {'-'.join(map(str, [len(FEATURE_NAMES), *args.hidden, 1]))} "
          f"({sum(p.numel() for p in model.parameters())} parameters) for {args.epochs} epochs")
    train(model, x_train, y_train, args)

    # Export, then evaluate what was written: the reloaded TorchScript module.
    version_dir = args.out / args.name / str(args.version)
    version_dir.mkdir(parents=True, exist_ok=True)
    model_path = version_dir / "model.pt"
    torch.jit.save(torch.jit.script(model), str(model_path))
    exported = torch.jit.load(str(model_path))
    exported.eval()

    val_scores = score(exported, val_rows.features)
    auc = roc_auc(val_scores, val_rows.labels)
    ap = average_precision(val_scores, val_rows.labels)
    cut = best_f1_threshold(val_scores, val_rows.labels)
    print(f"validation: ROC-AUC {auc:.4f}  PR-AUC (average precision) {ap:.4f}")
    print(f"threshold {cut.value!r} (max F1 on validation): precision {cut.precision:.3f}  "
          f"recall {cut.recall:.3f}  F1 {cut.f1:.3f}  flagged {cut.flagged}/{len(val_rows)}")

    command = (f"tools/train_model.py --hidden {','.join(map(str, args.hidden))} --epochs {args.epochs} "
               f"--lr {args.lr} --seed {args.seed} --name {args.name} --version {args.version}")
    doc = {
        "name": args.name,
        "description": (
            f"MLP ({'-'.join(map(str, [len(FEATURE_NAMES), *args.hidden, 1]))}, ReLU) scoring card "
            "transactions for fraud. Takes raw features; standardisation and sigmoid are built in."
        ),
        "platform": "torchscript",
        "inputs": FEATURE_NAMES,
        "input_dtype": "FP32",
        "output": {"name": "fraud_probability", "shape": [-1]},
        # The exported module's `mean` buffer (float32 values as Python floats, so repr
        # round-trips them): the training mean of each input, in FEATURE_NAMES order.
        "baseline": [float(v) for v in exported.mean.tolist()],
        "threshold": cut.value,
        "training": {
            "version": args.version,
            "rows_train": len(train_rows),
            "rows_validation": len(val_rows),
            "frauds_validation": sum(val_rows.labels),
            "roc_auc": round(auc, 6),
            "pr_auc": round(ap, 6),
            "epochs": args.epochs,
            "hidden": args.hidden,
            "lr": args.lr,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "data_sha256": data_sha256,
        },
        "data_source": DATA_SOURCE,
        "license": ATTRIBUTION,
    }
    yaml_path = args.out / args.name / "model.yaml"
    write_model_yaml(yaml_path, doc, command, val_rows, args.val_fraction)
    written = [model_path, yaml_path]

    if not args.no_reference:
        rng = random.Random(args.seed)
        ref_rows = val_rows.take(pick_rows(val_rows.labels, REFERENCE_ROWS, REFERENCE_MAX_FRAUD_SHARE, rng))
        args.reference.parent.mkdir(parents=True, exist_ok=True)
        write_reference(args.reference, args.name, args.version, ref_rows, score(exported, ref_rows.features))
        written.append(args.reference)

    if not args.no_sample:
        rng = random.Random(args.seed + 1)
        sample_rows = val_rows.take(pick_rows(val_rows.labels, SAMPLE_ROWS, 1.0, rng))
        sample_dir = args.out / args.name / "sample"
        write_sample(sample_dir, sample_rows, val_rows, args.data.name, args.val_fraction)
        written += [sample_dir / "transactions.csv", sample_dir / "NOTICE.md"]

    print(f"done in {time.monotonic() - started:.1f} s; wrote:")
    for path in written:
        print(f"  {display_path(path)}  ({path.stat().st_size:,} bytes)")
    return 0


def fix_hash_seed(script: Path | None = None) -> None:
    """Re-runs `script` (this one by default) with PYTHONHASHSEED=0 unless it already has it.

    TorchScript writes the constants of nn.Linear (a set of strings) in string
    hash order, which Python randomises per process; a fixed seed makes the same
    inputs give a byte-identical model.pt. (Its debug info also records this
    script's absolute path, so the bytes depend on where the checkout lives;
    the weights and scores do not.)
    """
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        script = script or Path(__file__)
        os.execv(sys.executable, [sys.executable, str(script.resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    fix_hash_seed()
    sys.exit(main())
