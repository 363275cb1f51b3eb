#!/usr/bin/python3
"""Trains Scout, vigil's terminal recommender, and measures it against two baselines.

1. Simulates raw transactions (tools/simulate_transactions.py: the handbook's simulator, the
   same seed and sizes as the fraud models' training data).
2. Takes each customer's terminal visits as implicit feedback: the earlier days (--train-days)
   to train, the later ones to test.
3. Trains a matrix factorisation in PyTorch: a customer vector and a terminal vector (plus a
   terminal bias) per id, scored by their dot product, trained with a softmax over every
   terminal on each (customer, terminal) pair of the training days, weighted by its visits.
4. Measures recall@10 and NDCG@10 on the test days, for customers seen in training who visit
   at least one terminal then, against two baselines computed in the same run: global
   popularity (the most visited terminals of the training days) and the customer's own most
   visited terminals (then the most popular ones to fill ten). Relevance is binary: a terminal
   the customer visits on a test day.
5. Exports models/scout/<version>/model.pt (TorchScript) and models/scout/model.yaml.

The TorchScript module holds everything serving needs, embeddings inside:
  forward(customers: int64 [B], rows of customer_ids, -1 for an unknown customer)
      -> float32 [B, terminals]: one batched matrix product; an unknown customer's row is the
         terminals' popularity (log of their training visits), a cold start.
  recommend(customers, k, exclude_seen) -> (scores float32 [B, k], terminals int64 [B, k]):
      the top k of forward's rows, best first, ties ordered by terminal row (id order);
      with exclude_seen, a known customer's training terminals are left out.
  attributes customer_ids (List[str], by row), terminal_ids (List[str], by row),
  seen_offsets (int64) / seen_terminals (int32): CSR, a customer's training terminals.

The same arguments give the same model (seeded, deterministic algorithms, one thread).
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_model as tm  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000
K = 10


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--terminals", type=int, default=10000)
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--sim-seed", type=int, default=0)
    p.add_argument("--train-days", type=int, default=90, help="the earlier days: training")
    p.add_argument("--dim", type=int, default=32, help="embedding size")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--weight-decay", type=float, default=1e-6)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=REPO_ROOT / "models")
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--reference", type=Path, default=REPO_ROOT / "tests/data/scout_v1_reference.json",
                   help="top-k of some customers from the exported module, for vigil's tests ('' to skip)")
    return p.parse_args(argv)


class Scout(torch.nn.Module):
    """What serving loads: embeddings, popularity, seen terminals, ids."""

    customer_ids: List[str]
    terminal_ids: List[str]

    def __init__(self, users, items, bias, popularity, seen_offsets, seen_terminals,
                 customer_ids, terminal_ids):
        super().__init__()
        self.register_buffer("users", users.float().contiguous())
        self.register_buffer("items_t", items.float().t().contiguous())  # [dim, terminals]
        self.register_buffer("bias", bias.float().contiguous())
        self.register_buffer("popularity", popularity.float().contiguous())
        self.register_buffer("seen_offsets", seen_offsets.long().contiguous())
        self.register_buffer("seen_terminals", seen_terminals.int().contiguous())
        self.customer_ids = customer_ids
        self.terminal_ids = terminal_ids

    def forward(self, customers: torch.Tensor) -> torch.Tensor:
        known = customers >= 0
        rows = torch.where(known, customers, torch.zeros_like(customers))
        scores = torch.addmm(self.bias, self.users.index_select(0, rows), self.items_t)
        return torch.where(known.unsqueeze(1), scores, self.popularity.unsqueeze(0))

    @torch.jit.export
    def recommend(self, customers: torch.Tensor, k: int,
                  exclude_seen: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        scores = self.forward(customers)
        if exclude_seen:
            for i in range(customers.size(0)):
                c = int(customers[i])
                if c >= 0:
                    lo = int(self.seen_offsets[c])
                    hi = int(self.seen_offsets[c + 1])
                    scores[i].index_fill_(0, self.seen_terminals[lo:hi].long(), float("-inf"))
        k = min(k, scores.size(1))
        top = torch.topk(scores, k, dim=1)
        # Ties in id order: where the k-th score is shared beyond the k kept, or the kept ones
        # tie among themselves, a stable sort of the whole row decides (rare but for cold
        # starts, whose popularity counts tie).
        values = top.values
        indices = top.indices
        for i in range(scores.size(0)):
            kth = values[i, k - 1]
            if int((scores[i] >= kth).sum()) > k or bool((values[i, 1:] == values[i, :-1]).any()):
                order = torch.sort(scores[i], descending=True, stable=True)
                values[i] = order.values[:k]
                indices[i] = order.indices[:k]
        return values, indices


def simulate(args, path):
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "simulate_transactions.py"),
                    "--customers", str(args.customers), "--terminals", str(args.terminals),
                    "--days", str(args.days), "--start-date", "2018-04-01",
                    "--seed", str(args.sim_seed), "--out", str(path)], check=True)


def ndcg_at_k(ranked, relevant):
    dcg = sum(1.0 / math.log2(i + 2) for i, t in enumerate(ranked[:K]) if t in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(K, len(relevant))))
    return dcg / ideal


def evaluate(name, rank, test):
    """rank(customer_row) -> the top K terminal rows; test: customer row -> set of terminals."""
    recall = ndcg = 0.0
    for c, relevant in test.items():
        ranked = rank(c)
        recall += len(set(ranked[:K]) & relevant) / len(relevant)
        ndcg += ndcg_at_k(ranked, relevant)
    n = len(test)
    return {"recall_at_10": round(recall / n, 4), "ndcg_at_10": round(ndcg / n, 4)}


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    tm.deterministic(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.jsonl"
        simulate(args, raw)
        start_ms = None
        visits = []  # (day, customer id, terminal id)
        with open(raw, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                if start_ms is None:
                    start_ms = e["event_time_ms"] - e["event_time_ms"] % DAY_MS
                visits.append(((e["event_time_ms"] - start_ms) // DAY_MS, e["customer_id"],
                               e["terminal_id"]))

    train = [v for v in visits if v[0] < args.train_days]
    test_visits = [v for v in visits if v[0] >= args.train_days]
    customer_ids = sorted({c for _, c, _ in train})
    terminal_ids = sorted({t for _, _, t in visits})
    crow = {c: i for i, c in enumerate(customer_ids)}
    trow = {t: i for i, t in enumerate(terminal_ids)}
    pairs = Counter((crow[c], trow[t]) for _, c, t in train)
    visits_by_terminal = Counter(trow[t] for _, _, t in train)
    test = defaultdict(set)
    for _, c, t in test_visits:
        if c in crow:
            test[crow[c]].add(trow[t])
    print(f"{len(visits)} transactions: {len(train)} on days 0..{args.train_days - 1} "
          f"({len(customer_ids)} customers, {len(pairs)} customer-terminal pairs), "
          f"{len(test_visits)} on days {args.train_days}..{args.days - 1}; "
          f"{len(terminal_ids)} terminals; {len(test)} customers to test")

    # Training: a softmax over every terminal, per (customer, terminal) pair weighted by its
    # visits.
    pair_list = sorted(pairs.items())
    users_t = torch.tensor([p[0][0] for p in pair_list])
    items_t = torch.tensor([p[0][1] for p in pair_list])
    weights = torch.tensor([float(p[1]) for p in pair_list])
    n_users, n_items = len(customer_ids), len(terminal_ids)
    users = torch.nn.Embedding(n_users, args.dim)
    items = torch.nn.Embedding(n_items, args.dim)
    bias = torch.nn.Parameter(torch.zeros(n_items))
    torch.nn.init.normal_(users.weight, std=0.1)
    torch.nn.init.normal_(items.weight, std=0.1)
    params = list(users.parameters()) + list(items.parameters()) + [bias]
    opt = torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    g = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        order = torch.randperm(len(pair_list), generator=g)
        total = 0.0
        for s in range(0, len(order), args.batch_size):
            b = order[s:s + args.batch_size]
            logits = users(users_t[b]) @ items.weight.t() + bias
            loss = (torch.nn.functional.cross_entropy(logits, items_t[b], reduction="none")
                    * weights[b]).sum() / weights[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(b)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(order):.4f}")

    popularity = torch.zeros(n_items)
    for t, n in visits_by_terminal.items():
        popularity[t] = math.log1p(n)
    seen = defaultdict(list)
    for (c, t) in pairs:
        seen[c].append(t)
    offsets, flat = [0], []
    for c in range(n_users):
        flat.extend(sorted(seen[c]))
        offsets.append(len(flat))
    model = Scout(users.weight.detach(), items.weight.detach(), bias.detach(), popularity,
                  torch.tensor(offsets), torch.tensor(flat, dtype=torch.long), customer_ids,
                  terminal_ids)
    scripted = torch.jit.script(model.eval())

    # Quality, the model and both baselines on the same test customers.
    popular = sorted(range(n_items), key=lambda t: (-visits_by_terminal[t], t))[:K]
    own = defaultdict(list)
    for (c, t), n in pairs.items():
        own[c].append((n, t))

    def rank_own(c):
        mine = [t for n, t in sorted(own[c], key=lambda x: (-x[0], x[1]))][:K]
        return mine + [t for t in popular if t not in mine][:K - len(mine)]

    rows = sorted(test)
    with torch.no_grad():
        top = {}
        for s in range(0, len(rows), 512):
            chunk = rows[s:s + 512]
            _, idx = scripted.recommend(torch.tensor(chunk), K, False)
            for c, r in zip(chunk, idx.tolist()):
                top[c] = r
    results = {
        "scout": evaluate("scout", lambda c: top[c], test),
        "popularity": evaluate("popularity", lambda c: popular, test),
        "own_most_visited": evaluate("own", rank_own, test),
    }
    sparse = {c: r for c, r in test.items() if len(own[c]) < K}
    results_sparse = {
        "customers": len(sparse),
        "scout": evaluate("scout", lambda c: top[c], sparse) if sparse else None,
        "own_most_visited": evaluate("own", rank_own, sparse) if sparse else None,
    }
    for k, v in results.items():
        print(f"  {k:18s} recall@10 {v['recall_at_10']:.4f}  NDCG@10 {v['ndcg_at_10']:.4f}")
    if sparse:
        print(f"  customers with fewer than 10 training terminals ({len(sparse)}): scout "
              f"recall@10 {results_sparse['scout']['recall_at_10']:.4f}, own most visited "
              f"{results_sparse['own_most_visited']['recall_at_10']:.4f}")

    out = args.out / "scout"
    (out / str(args.version)).mkdir(parents=True, exist_ok=True)
    scripted.save(str(out / str(args.version) / "model.pt"))
    command = " ".join(["tools/train_scout.py"] + (argv if argv is not None else sys.argv[1:]))
    lines = [
        "# Generated by tools/train_scout.py; do not edit by hand, re-run it:",
        f"#   {command}",
        "name: scout",
        "description: Terminal recommender (matrix factorisation, "
        f"{args.dim}-d customer and terminal embeddings and a terminal bias, trained on "
        "customer -> terminal visits). forward(customers) scores every terminal; "
        "recommend(customers, k, exclude_seen) gives the top k, ties in terminal id order.",
        "platform: torchscript",
        "kind: recommender",
        f"customers: {n_users}",
        f"terminals: {n_items}",
        "training:",
        f"  data: tools/simulate_transactions.py --customers {args.customers} --terminals "
        f"{args.terminals} --days {args.days} --seed {args.sim_seed}",
        f"  days: {{train: {args.train_days}, test: {args.days - args.train_days}}}",
        f"  pairs_train: {len(pairs)}",
        f"  customers_test: {len(test)}",
        f"  epochs: {args.epochs}",
        f"  dim: {args.dim}",
        f"  lr: {args.lr}",
        "  test:",
    ]
    for k, v in results.items():
        lines.append(f"    {k}: {{recall_at_10: {v['recall_at_10']}, ndcg_at_10: {v['ndcg_at_10']}}}")
    if sparse:
        lines.append("  test_customers_under_10_training_terminals:")
        lines.append(f"    customers: {len(sparse)}")
        for k in ("scout", "own_most_visited"):
            v = results_sparse[k]
            lines.append(f"    {k}: {{recall_at_10: {v['recall_at_10']}, ndcg_at_10: {v['ndcg_at_10']}}}")
    (out / "model.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    if str(args.reference):
        # Top-k of a few customers, known and unknown, with and without their seen terminals,
        # from the exported module itself (what vigil's /recommend must answer).
        picks = [0, 1, 2, n_users // 2, n_users - 1]
        cases = []
        loaded = torch.jit.load(str(out / str(args.version) / "model.pt"))
        for exclude in (False, True):
            for k in (1, 10, 100):
                rows_in = torch.tensor(picks + [-1])
                vals, idx = loaded.recommend(rows_in, k, exclude)
                for c, v, i in zip(picks + [-1], vals.tolist(), idx.tolist()):
                    cases.append({
                        "customer_id": customer_ids[c] if c >= 0 else "unknown-customer",
                        "k": k, "exclude_seen": exclude, "cold_start": c < 0,
                        "terminals": [terminal_ids[t] for t in i], "scores": v})
        args.reference.parent.mkdir(parents=True, exist_ok=True)
        args.reference.write_text(json.dumps({"model": "scout", "version": args.version,
                                              "cases": cases}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
