#!/usr/bin/env python3
"""Export a scripts/train_charlm.py run as the zoo model folder `char-lstm`.

Writes weights/char-lstm.safetensors (f32), models/char-lstm/{config.json,
vocab.json, README.md, model.safetensors -> ../../weights/...}, and the parity
fixture tests/fixtures/charlm/char-lstm.json: PyTorch's next-character
logits after a few prompts, bits per character of a short passage, and the
greedy (temperature 0) continuation of each prompt, which the Rust tests
reproduce.

Example:
  python scripts/export_charlm.py --run scripts/runs/char-lstm --checkpoint final.pt
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from train_charlm import CharLSTM, encode  # noqa: E402

NAME = "char-lstm"
PROMPTS = [
    "The ",
    "\"I do not know,\" said ",
    "CHAPTER I\n\n",
    "It was a dark and stormy night; the rain fell in torrents (except at occasional intervals",
    "HAMLET. To be, or not to be",
]
PASSAGE = ("\"Mr. Knightley,\" said Emma, \"you are very kind; but I cannot think so.\"\n"
           "She paused (for a moment only) and then went on: \"Let us talk of something else.\"\n")
GREEDY_CHARS = 60


@torch.no_grad()
def greedy(model, index, vocab, prompt, n):
    ids = encode(prompt, index).unsqueeze(0)
    logits, state = model(ids)
    out = []
    last = logits[0, -1]
    for _ in range(n):
        nxt = int(last[1:].argmax()) + 1  # never the unknown id, as zoo samples
        out.append(vocab[nxt])
        logits, state = model(torch.tensor([[nxt]]), state)
        last = logits[0, -1]
    return "".join(out)


@torch.no_grad()
def passage_bpc(model, index, text):
    ids = encode(text, index).unsqueeze(0)
    logits, _ = model(ids[:, :-1])
    return F.cross_entropy(logits[0], ids[0, 1:]).item() / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--checkpoint", default="final.pt")
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--notes", default=None,
                    help="a Markdown file appended to the card (measured speed, probe results)")
    ap.add_argument("--command", default="python scripts/train_charlm.py --out scripts/runs/char-lstm "
                    "--seed 1 --time-budget-min 125")
    args = ap.parse_args()

    st = torch.load(os.path.join(args.run, args.checkpoint), weights_only=False)
    hp, vocab = st["hparams"], st["vocab"]
    model = CharLSTM(**hp)
    model.load_state_dict(st["model"])
    model.eval()
    index = {c: i for i, c in enumerate(vocab)}
    with open(os.path.join(args.run, "hparams.json")) as f:
        train_args = json.load(f)

    weights = os.path.join(args.root, "weights", f"{NAME}.safetensors")
    save_file({k: v.contiguous().float() for k, v in model.state_dict().items()}, weights)
    d = os.path.join(args.root, "models", NAME)
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "model.safetensors")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(f"../../weights/{NAME}.safetensors", link)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
        f.write("\n")

    params = sum(p.numel() for p in model.parameters())
    valid_bpc = st.get("valid_bpc")
    chars_seen = st["step"] * train_args["bptt"] * train_args["batch"]
    metrics = {"valid_bpc": round(valid_bpc, 4) if valid_bpc is not None else None}
    config = {
        "zoo_format": 1,
        "task": "generate",
        "name": NAME,
        "vocab_size": len(vocab),
        "embedding_dim": hp["emb"],
        "units": hp["units"],
        "num_layers": hp["num_layers"],
        "weights": "model.safetensors",
        "metrics": metrics,
        "seed": train_args["seed"],
        "params": params,
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    cases = []
    for p in PROMPTS:
        ids = encode(p, index).unsqueeze(0)
        with torch.no_grad():
            logits, _ = model(ids)
        cases.append({"prompt": p, "last_logits": [round(x, 6) for x in logits[0, -1].tolist()],
                      "greedy": greedy(model, index, vocab, p, GREEDY_CHARS)})
    fixture = {"model": NAME, "cases": cases, "passage": PASSAGE,
               "passage_bpc": passage_bpc(model, index, PASSAGE)}
    fx = os.path.join(args.root, "tests", "fixtures", "charlm")
    os.makedirs(fx, exist_ok=True)
    with open(os.path.join(fx, f"{NAME}.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False)
        f.write("\n")

    curve = "\n".join(f"| {s} | {m:.1f} | {b:.4f} |" for s, m, b in st["curve"])
    samples = "\n".join(f"- `{json.dumps(c['prompt'])[1:-1]}` → `{json.dumps(c['greedy'])[1:-1]}`"
                        for c in cases[:3])
    card = f"""---
license: mit
language: en
library_name: zoo
tags: [lstm, character-level, language-model, text-generation]
datasets: [gutenberg]
---

# char-lstm

A character-level LSTM language model, the kind in which Karpathy, Johnson
and Fei-Fei ("Visualizing and Understanding Recurrent Networks", 2015) found
single cells that track quotes, brackets and line length. It reads text one
character at a time and gives the next character's distribution: `zoo run
generate "PROMPT"` samples from it, `zoo eval lm` scores text in bits per
character, and `zoo probe char-lstm --file TEXT` asks what each memory cell
holds.

| | |
|---|---|
| architecture | Embedding({len(vocab)}, {hp['emb']}) → LSTM({hp['emb']}, {hp['units']}) × {hp['num_layers']} layer(s) → Linear({hp['units']}, {len(vocab)}) |
| parameters | {params:,} |
| alphabet | {len(vocab) - 1} characters of the training books, plus one id for any other character |
| weights | f32, `weights/{NAME}.safetensors` ({os.path.getsize(weights) / 2**20:.1f} MiB) |

## Data

Project Gutenberg books (`../shared/data/gutenberg/`): 43 public-domain works
(novels with dialogue, plays, poetry, essays; 24.8 M characters) for
training; two whole books held out for validation: Austen's *Emma* and
Shakespeare's *Twelfth Night* (1.0 M characters). Public domain in the USA;
the Project Gutenberg licence text and headers were removed as its terms
allow for public-domain texts.

## Training

```sh
python -m venv venv && venv/bin/pip install -r scripts/requirements.txt
venv/bin/{args.command}
venv/bin/python scripts/export_charlm.py --run scripts/runs/char-lstm --checkpoint {args.checkpoint}
```

Seed {train_args['seed']}; truncated backpropagation through time over {train_args['batch']}
parallel streams of the training text, {train_args['bptt']} characters a window, the state
carried between windows; Adam, learning rate {train_args['lr']} with a 200-step warm-up and a
cosine decay to {train_args['min_lr']} over the time budget, gradients clipped at
{train_args['clip']} (the cosine runs over the steps or the time budget, whichever ends first).
PyTorch on 2 CPU cores (AMD EPYC, AVX2), sharing them with builds: {st['step']:,} steps
({chars_seen / 1e6:.1f} M characters, {chars_seen / 24.77e6:.2f} passes over the training books) in
{st['elapsed'] / 60:.0f} minutes. To train on from these weights (a fresh optimiser), add
`--init-from weights/char-lstm.safetensors --epochs N` to the command above.

## Validation

Bits per character on the two held-out books (all {1.0:.1f} M characters, read
as 16 streams with the state carried, as `zoo eval lm` does):
**{"not measured (a checkpoint mid-run)" if valid_bpc is None else f"{valid_bpc:.4f}"}** (PyTorch); `zoo eval lm` (Rust, the exported weights) gives the same
figure to four decimals. The project's target for this model, below 1.5, is not reached: one
pass over the books on two shared CPU cores is far too little training for a 512-unit LSTM (the
curve below is still falling); training on from these weights is the way there.

Training curve (validation bpc on the first 100,000 to 200,000 held-out characters, as the
run was configured at the time):

| step | M chars read | valid bpc |
|---|---|---|
{curve}

Greedy continuations (temperature 0):

{samples}

## Limitations

Trained on 19th-century and older English literature: it writes pastiche of
novels and plays, not modern prose, and knows nothing of facts. Characters
outside its alphabet read as one unknown character. A small model trained
for a short time on two CPU cores: its text is locally fluent and globally
aimless.
"""
    if args.notes:
        with open(args.notes, encoding="utf-8") as f:
            card += "\n" + f.read()
    with open(os.path.join(d, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(f"wrote {weights}, {d}, {fx}/{NAME}.json (valid bpc {valid_bpc})")


if __name__ == "__main__":
    main()
