#!/usr/bin/env python3
"""Generation speed of char-lstm at batch 1: zoo against PyTorch, same run.

PyTorch: the model loaded from models/char-lstm's safetensors into
scripts/train_charlm.CharLSTM, sampled step by step (one character in, the
state carried, softmax / temperature, torch.multinomial), as a PyTorch user
writes it; 2 threads, no grad.

zoo: `zoo run generate PROMPT --max-chars N --seed S`, its stdout read as
it is written: the first generated character's time after the process
started (loading included) and the characters per second after it.

Rounds alternate between the two; medians are printed with the ratio.

Example:
  cargo build --release && venv/bin/python scripts/bench_generate.py --chars 2000 --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from train_charlm import CharLSTM  # noqa: E402

PROMPT = "\"I do not know,\" said "


def load_torch(model_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    vocab = json.load(open(os.path.join(model_dir, "vocab.json"), encoding="utf-8"))
    m = CharLSTM(cfg["vocab_size"], emb=cfg["embedding_dim"], units=cfg["units"], num_layers=cfg["num_layers"])
    m.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")))
    m.eval()
    return m, vocab


@torch.no_grad()
def torch_generate(m, vocab, prompt, n, temperature=0.8, seed=1):
    g = torch.Generator().manual_seed(seed)
    index = {c: i for i, c in enumerate(vocab)}
    t0 = time.perf_counter()
    ids = torch.tensor([[index.get(c, 0) for c in prompt]])
    logits, state = m(ids)
    last = logits[0, -1]
    first = None
    out = []
    for _ in range(n):
        p = torch.softmax(last[1:] / temperature, dim=-1)
        nxt = int(torch.multinomial(p, 1, generator=g)) + 1
        if first is None:
            first = time.perf_counter() - t0
        out.append(vocab[nxt])
        logits, state = m(torch.tensor([[nxt]]), state)
        last = logits[0, -1]
    total = time.perf_counter() - t0
    return first, (n - 1) / (total - first), "".join(out)


def zoo_generate(zoo, prompt, n, seed=1):
    t0 = time.perf_counter()
    p = subprocess.Popen([zoo, "run", "generate", prompt, "--max-chars", str(n), "--seed", str(seed)],
                         stdout=subprocess.PIPE, cwd=ROOT)
    want = len(prompt.encode("utf-8"))
    got = b""
    first = None
    while True:
        b = p.stdout.read(1)
        if not b:
            break
        got += b
        if first is None and len(got) > want:
            first = time.perf_counter()
    p.wait()
    end = time.perf_counter()
    return first - t0, (n - 1) / (end - first), got.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--zoo", default=os.path.join(ROOT, "target", "release", "zoo"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "char-lstm"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    m, vocab = load_torch(args.model)
    rows = {"torch": [], "zoo": []}
    for r in range(args.rounds):
        rows["torch"].append(torch_generate(m, vocab, PROMPT, args.chars)[:2])
        rows["zoo"].append(zoo_generate(args.zoo, PROMPT, args.chars)[:2])
        print(f"round {r + 1}: torch {rows['torch'][-1][1]:,.0f} chars/s, zoo {rows['zoo'][-1][1]:,.0f} chars/s",
              file=sys.stderr)
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in rows.items()}
    print(f"| | first character (ms) | characters/s |")
    print(f"|---|---|---|")
    print(f"| PyTorch {torch.__version__}, step by step | {med['torch'][0] * 1e3:.1f} | {med['torch'][1]:,.0f} |")
    print(f"| zoo run generate (process start, load included) | {med['zoo'][0] * 1e3:.1f} | {med['zoo'][1]:,.0f} |")
    print(f"| zoo / PyTorch | | **{med['zoo'][1] / med['torch'][1]:.2f}x** |")


if __name__ == "__main__":
    main()
