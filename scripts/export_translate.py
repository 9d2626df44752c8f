#!/usr/bin/env python3
"""Export the trained English->German translator into the zoo layout.

Command (RUN = the --out folder of scripts/train_translate.py; uses RUN/best.pt,
i.e. the weights with the best val greedy BLEU):
  OMP_NUM_THREADS=1 python scripts/export_translate.py --run /work/runs/translate/main
  options: --ckpt PATH (another checkpoint), --root DIR (write elsewhere than the repo, for tests),
           --average RUN/epochs/epNN.pt ... (export the average of those epochs' weights),
           --no-beam (skip the ~2-minute beam BLEU; keeps the beam metric at 0.0)

Writes, relative to the repository root:
  weights/translate-en-de.safetensors   state_dict (names below); every matrix (2-D weight)
                                        in f16, the biases in f32
  models/translate-en-de/config.json
  models/translate-en-de/tokenizer.json (the tokenizer the checkpoint was trained with)
  models/translate-en-de/README.md      model card
  models/translate-en-de/model.safetensors -> ../../weights/translate-en-de.safetensors
  tests/fixtures/translate/translate-en-de.json   parity fixture

BLEU and the fixture are computed from the files as written (reloaded, f16 -> f32),
so they describe exactly what the Rust side loads.
"""
import argparse
import datetime
import json
import os
import sys
import time

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from eval_translate import (beam_search, encode_source, eval_beam, eval_greedy, stored_f16,  # noqa: E402
                            greedy, load_ckpt, load_model_dir, val_data)
from train_translate import EOS, decode_text  # noqa: E402

LANGS = {  # target language -> (name, where that side of Multi30k comes from)
    "de": ("German", "whose German side was written for Multi30k (Elliott et al., 2016)"),
    "fr": ("French", "whose French side was added for the 2017 shared task (Elliott et al., "
                     "\"Findings of the Second Shared Task on Multimodal Machine Translation and "
                     "Multilingual Image Description\", WMT 2017)"),
}
NAMES = [
    "src_embedding.weight",
    "encoder.weight_ih_l0", "encoder.weight_hh_l0", "encoder.bias_ih_l0", "encoder.bias_hh_l0",
    "encoder.weight_ih_l0_reverse", "encoder.weight_hh_l0_reverse",
    "encoder.bias_ih_l0_reverse", "encoder.bias_hh_l0_reverse",
    "bridge.weight", "bridge.bias",
    "attention.W.weight", "attention.W.bias", "attention.v.weight",
    "tgt_embedding.weight",
    "decoder.weight_ih_l0", "decoder.weight_hh_l0", "decoder.bias_ih_l0", "decoder.bias_hh_l0",
    "out.weight", "out.bias",
]
MAX_SOURCE_TOKENS = 128
MAX_LEN_A, MAX_LEN_B = 1.5, 10
BEAM, ALPHA = 5, 1.0
SIZE_LIMIT = 25 * 1024 * 1024

FIXTURE_TEXTS = [
    "A man is riding a bicycle down the street.",
    "Two young children are playing soccer in a park.",
    "A woman in a red dress is singing into a microphone while a band plays behind her on a stage.",
    "Dogs run.",
    "An elderly man sits on a bench reading a newspaper, and a little girl feeds the pigeons.",
    "3 men in orange vests are working on the railroad tracks at night!",
    "A young girl with brown hair smiles at the camera.",
    "The café's chef prepares a colorful dish (with fresh vegetables) in the kitchen.",
]


def export_weights(model, path, name):
    sd = model.state_dict()
    assert sorted(sd.keys()) == sorted(NAMES), sorted(set(sd) ^ set(NAMES))
    tensors = {}
    for n in NAMES:
        t = sd[n].detach().contiguous()
        tensors[n] = t.half() if stored_f16(t) else t.float()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata={"format": "pt", "model": name})
    os.chmod(path, 0o644)


def compact_json(obj):
    """Indented JSON with lists of numbers (and [id, logit] pairs) kept on one line."""
    import re
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    num = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
    # innermost lists of numbers -> one line
    text = re.sub(r"\[\s*(" + num + r"(?:,\s*" + num + r")*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    # lists of such one-line lists -> one line
    text = re.sub(r"\[\s*(\[[^\[\]]*\](?:,\s*\[[^\[\]]*\])*)\s*\]",
                  lambda m: "[" + re.sub(r"\],\s*\[", "], [", m.group(1)) + "]", text)
    assert json.loads(text) == obj
    return text


def make_fixture(model, tok, name):
    cases = []
    for text in FIXTURE_TEXTS:
        src = encode_source(tok, text, MAX_SOURCE_TOKENS)
        ids, first = greedy(model, src, MAX_LEN_A, MAX_LEN_B)
        top = torch.topk(first, 5)
        bids, bscore = beam_search(model, src, BEAM, ALPHA, MAX_LEN_A, MAX_LEN_B)
        cases.append({
            "text": text,
            "source_ids": src,
            "greedy_ids": ids,
            "greedy_text": decode_text(tok, ids),
            "first_step_logits_top5": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
            "beam_ids": bids,
            "beam_text": decode_text(tok, bids),
            "beam_score": float(bscore),
        })
    return {"model": name, "cases": cases}


CARD = """# {name}

English → {lang} translation: a GRU encoder–decoder with additive (Bahdanau) attention,
trained from scratch on Multi30k (image descriptions).  Part of the `zoo` model zoo;
weights in `model.safetensors`, joint subword tokenizer in `tokenizer.json`.

## Results (Multi30k val, 1,014 sentences)

| decoding | sacreBLEU |
| --- | --- |
| greedy | {greedy:.2f} |
| beam search, beam 5, length penalty α = {alpha} | {beam:.2f} |

sacreBLEU {sacrebleu_version} `corpus_bleu(hyps, [refs])` (default 13a tokenisation, cased),
hypotheses = detokenised model output, references = the raw `val.{tgt}` lines.
Computed from the exported weights (f16 matrices, f32 arithmetic).{best_line}

Beam search: hypotheses scored by the sum of log-softmax probabilities; each step
expands every live hypothesis, ranks all (hypothesis, token) candidates by score, and
walks them best first: a candidate ending in `</s>` is finished with score / len^α
(len = generated tokens including `</s>`), any other one stays live, until 5 are live;
decoding stops once 5 hypotheses are finished or after the length limit (then the live
ones are finished with score / len^α); the best normalised score wins.
The full description is at the top of `scripts/eval_translate.py`.

## Model

| part | shape |
| --- | --- |
| tokenizer | joint BPE over train.en + train.{tgt}, {V} entries, case kept; NFC + whitespace normalisation, Metaspace + punctuation pre-tokeniser, Metaspace decoder; `<pad>`=0 `<unk>`=1 `<s>`=2 `</s>`=3 |
| `src_embedding` | Embedding({V}, {E}) |
| `encoder` | bidirectional GRU({E} → {H} per direction), PyTorch gate layout (r, z, n), `reset_after` form |
| `bridge` | Linear({H2} → {D}); s₀ = tanh(bridge([h_fwd; h_bwd])) |
| `attention` | additive: e_j = v · tanh(W [s_(t-1); h_j] + b), W: Linear({DA} → {A}), v: Linear({A} → 1, no bias); softmax over source tokens |
| `tgt_embedding` | Embedding({V}, {E}) |
| `decoder` | GRU([emb(y_(t-1)); c_t] ({EC}) → {D}) |
| `out` | Linear([s_t; c_t; emb(y_(t-1))] ({DO}) → {V}) |

Parameters: {nparams:,}.  `model.safetensors`: {size_mib:.2f} MiB (every weight matrix
stored as f16, the biases as f32; all arithmetic in f32).

Decoding: the source is `tokenizer.encode(text)` without special tokens (at most
{max_src} tokens); the decoder starts from `<s>` and stops at `</s>` or after
floor({a} × source tokens + {b}) tokens.

## Training

Data: Multi30k task 1 (Elliott et al., "Multi30K: Multilingual English-German Image
Descriptions", Proceedings of the 5th Workshop on Vision and Language, 2016), 29,000
English–{lang} training pairs; val (1,014) for model selection and the numbers above.
The test splits were not used.

```
{commands}
```
{init_note}
Seed {seed}.  Teacher forcing, cross entropy with label smoothing {ls}, Adam (lr {lr}, halved
whenever the val loss did not improve, gradient-norm clip {clip}), batches of {bs}
sentences, dropout {edrop} on embeddings, {encdrop} on encoder outputs, {odrop} on the
output-layer input (training only).  {weights_desc}, reached after {hours:.1f} h of
wall-clock training on a 2-core CPU machine (one or two torch threads, shared with other
jobs at times; including any time the run was paused){cpu_note}.

## Licence and limitations

The weights are derived from Multi30k, whose English side comes from Flickr30k image
captions (Young et al., 2014) and {side}; the data
are distributed by their authors for research, and the Flickr30k captions' terms limit
them to non-commercial research use.  Treat this model the same way.

- Domain: short, literal descriptions of photographs ("A man in a blue shirt is …").
  Anything else (news, dialogue, questions, long or technical text) is translated
  poorly, often as a fluent but unrelated image description.
- Small data (29k pairs) and a small model: rare words are often mistranslated or
  dropped, and the model can hallucinate or repeat phrases.  It does not copy
  unknown names or numbers reliably.
- Sentences only: one sentence in, one out; input longer than {max_src} subword tokens is
  truncated.
- Gender and other biases of the image captions are reproduced.
"""


def epochs_run(ck, run_dir):
    """Number of finished epochs of the run (history.json next to the checkpoint)."""
    try:
        with open(os.path.join(run_dir, "history.json")) as f:
            return len(json.load(f)["history"])
    except (OSError, KeyError, ValueError):
        return len(ck.get("history") or []) or ck.get("epoch", 0) + 1


def manual_lrs(run_dir):
    """LR changes made by hand (train_translate.py --resume --set-lr), from the run's ckpt.pt."""
    path = os.path.join(run_dir, "ckpt.pt")
    if not os.path.exists(path):
        return []
    return torch.load(path, map_location="cpu", weights_only=False).get("manual_lr") or []


def train_commands(args, run_dir, average, manual=()):
    """The commands that reproduce this export, from the run's own arguments."""
    a = argparse.Namespace(**args)
    lines = []
    if getattr(a, "init_from", None):
        src = "--init-from {} --init-epochs {}".format(a.init_from, a.init_epochs)
    else:
        tgt = getattr(a, "tgt", "de")
        tj = "/work/runs/translate/tokenizer.json" if tgt == "de" else f"/work/runs/translate/tokenizer-{tgt}.json"
        lines.append(f"python scripts/translate_tokenizer.py --tgt {tgt} --out {tj}")
        src = f"--tgt {tgt} --tokenizer {tj}"
    flags = (f"--seed {a.seed} --embedding-dim {a.embedding_dim} --encoder-units {a.encoder_units} "
             f"--decoder-units {a.decoder_units} --attention-dim {a.attention_dim} --lr {a.lr}")
    if getattr(a, "warmup_steps", 0):
        flags += f" --warmup-steps {a.warmup_steps}"
    lines.append(f"OMP_NUM_THREADS=1 python scripts/train_translate.py {src} \\\n    --out {run_dir} {flags}")
    for m in manual:
        lines.append(f"# at the start of epoch {m['epoch'] + 1} (1-based): stop the run, then")
        lines.append(f"OMP_NUM_THREADS=1 python scripts/train_translate.py --out {run_dir} --resume --set-lr {m['lr']}")
    avg = (" --average " + " ".join(os.path.join(run_dir, "epochs", x) for x in average)) if average else ""
    lines.append(f"OMP_NUM_THREADS=1 python scripts/export_translate.py --run {run_dir}{avg}")
    lines.append(f"OMP_NUM_THREADS=1 python scripts/eval_translate.py --model models/translate-en-{getattr(a, 'tgt', 'de')}")
    return "\n".join(lines)


def init_note(args, manual=()):
    a = argparse.Namespace(**args)
    note = "".join(f"\nThe LR was set by hand to {m['lr']} at the start of epoch {m['epoch'] + 1} (1-based), "
                   f"to reach a lower LR sooner than the val-loss rule would have in the time left.\n"
                   for m in manual)
    if not getattr(a, "init_from", None):
        return note
    return note + (f"\nThis run continued training from the weights in `{a.init_from}` as committed before it "
            f"(themselves {a.init_epochs} epochs of the same recipe from random weights, seed 1, lr 0.001), "
            f"with a fresh Adam optimiser and a {a.warmup_steps}-step linear LR warm-up; "
            f"the tokenizer is the one in that folder. Epoch numbers below count from the restart.\n")


def weights_desc(ck, ckpt):
    n = epochs_run(ck, os.path.dirname(os.path.abspath(ckpt)))
    if ck.get("averaged"):
        eps = [int(x[2:4]) + 1 for x in ck["averaged"]]
        return (f"These weights are the element-wise average of the weights after epochs "
                f"{', '.join(map(str, eps))} (1-based; chosen by val greedy BLEU) of the {n} epochs run")
    ep = ck.get("best_epoch", ck.get("epoch", 0)) + 1
    return (f"These are the weights after epoch {ep} (the best val greedy BLEU of the {n} epochs "
            f"run so far)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="/work/runs/translate/main")
    ap.add_argument("--ckpt")
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--average", nargs="+", help="export the average of these RUN/epochs/epNN.pt weights")
    ap.add_argument("--no-beam", action="store_true")
    ap.add_argument("--max-val", type=int, help="(pipeline tests only) evaluate on the first N val lines")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ckpt = a.ckpt or os.path.join(a.run, "best.pt")
    model, tok, ck = load_ckpt(ckpt, average=a.average)
    V = tok.get_vocab_size()
    mk = ck["model_kwargs"]
    assert mk["vocab_size"] == V

    tgt = ck["args"].get("tgt", "de")
    NAME = f"translate-en-{tgt}"
    wpath = os.path.join(a.root, "weights", f"{NAME}.safetensors")
    mdir = os.path.join(a.root, "models", NAME)
    os.makedirs(mdir, exist_ok=True)
    export_weights(model, wpath, NAME)
    size = os.path.getsize(wpath)
    print(f"wrote {wpath}: {size / 2**20:.2f} MiB")
    if size > SIZE_LIMIT:
        print("WARNING: weights exceed 25 MiB")
    link = os.path.join(mdir, "model.safetensors")
    if os.path.islink(link) or os.path.exists(link):
        os.remove(link)
    os.symlink(f"../../weights/{NAME}.safetensors", link)
    with open(os.path.join(mdir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(ck["tokenizer_json"])

    cfg = {"zoo_format": 1, "task": "translate", "name": NAME, "weights": "model.safetensors",
           "source_lang": "en", "target_lang": tgt, "vocab_size": V,
           "embedding_dim": mk["embedding_dim"], "encoder_units": mk["encoder_units"],
           "decoder_units": mk["decoder_units"], "attention_dim": mk["attention_dim"],
           "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3,
           "max_source_tokens": MAX_SOURCE_TOKENS, "max_len_a": MAX_LEN_A, "max_len_b": MAX_LEN_B,
           "beam_size": BEAM, "length_penalty": ALPHA,
           "metrics": {"multi30k_val_bleu_greedy": 0.0, "multi30k_val_bleu_beam5": 0.0},
           "seed": ck["args"]["seed"]}
    cfg_path = os.path.join(mdir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    # Everything below runs on the model as reloaded from the written files.
    model, tok, _ = load_model_dir(mdir)
    src, refs = val_data(a.max_val, tgt=tgt)
    t0 = time.time()
    g, _ = eval_greedy(model, tok, src, refs, MAX_SOURCE_TOKENS)
    print(f"val BLEU greedy {g:.2f} ({time.time() - t0:.0f}s)", flush=True)
    b = 0.0
    if not a.no_beam:
        t0 = time.time()
        b, _ = eval_beam(model, tok, src, refs, BEAM, ALPHA, MAX_SOURCE_TOKENS)
        print(f"val BLEU beam{BEAM} alpha={ALPHA} {b:.2f} ({time.time() - t0:.0f}s)", flush=True)
    cfg["metrics"] = {"multi30k_val_bleu_greedy": round(g, 2), "multi30k_val_bleu_beam5": round(b, 2)}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    fx = make_fixture(model, tok, NAME)
    fpath = os.path.join(a.root, "tests", "fixtures", "translate", f"{NAME}.json")
    os.makedirs(os.path.dirname(fpath), exist_ok=True)
    with open(fpath, "w", encoding="utf-8") as f:
        f.write(compact_json(fx) + "\n")
    for c in fx["cases"]:
        print(f"  {c['text']}\n    greedy: {c['greedy_text']}\n    beam:   {c['beam_text']}")

    import sacrebleu
    args = ck["args"]
    hist = ck.get("history") or []
    nparams = sum(p.numel() for p in model.parameters())
    E, H, D, A = mk["embedding_dim"], mk["encoder_units"], mk["decoder_units"], mk["attention_dim"]
    run_dir = os.path.dirname(os.path.abspath(ckpt))
    manual = manual_lrs(run_dir)  # reads the run's ckpt.pt once
    card = CARD.format(
        name=NAME, tgt=tgt, lang=LANGS[tgt][0], side=LANGS[tgt][1],
        greedy=g, beam=b, alpha=ALPHA, sacrebleu_version=sacrebleu.__version__,
        best_line=("" if not a.no_beam else "\n(Beam BLEU was not computed for this export.)"),
        V=V, E=E, H=H, H2=2 * H, D=D, A=A, DA=D + 2 * H, EC=E + 2 * H, DO=D + 2 * H + E,
        nparams=nparams, size_mib=size / 2**20, max_src=MAX_SOURCE_TOKENS, a=MAX_LEN_A, b=MAX_LEN_B,
        seed=args["seed"], ls=args["label_smoothing"], lr=args["lr"], clip=args["clip"],
        bs=args["batch_size"], edrop=args["emb_dropout"], encdrop=args["enc_dropout"],
        odrop=args["out_dropout"], weights_desc=weights_desc(ck, ckpt),
        commands=train_commands(args, run_dir, ck.get("averaged"), manual),
        init_note=init_note(args, manual),
        hours=ck.get("train_seconds", 0.0) / 3600,
        cpu_note=(f"; {ck['cpu_seconds'] / 3600:.1f} h of process CPU time"
                  if ck.get("cpu_seconds") else ""))
    with open(os.path.join(mdir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(json.dumps(cfg["metrics"]), f"params {nparams}", f"{size} bytes",
          datetime.datetime.now().strftime("%H:%M"))


if __name__ == "__main__":
    main()
