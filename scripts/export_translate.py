#!/usr/bin/env python3
"""Export a trained English->German (or ->French) translator into the zoo layout.

Command (RUN = the --out folder of scripts/train_translate.py; uses RUN/best.pt,
i.e. the weights with the best val greedy BLEU):
  OMP_NUM_THREADS=1 python scripts/export_translate.py --run /work/runs/translate/main
  several runs (same recipe, other seeds, one tokenizer) export an ensemble decoded as one model:
  OMP_NUM_THREADS=1 python scripts/export_translate.py --run /work/runs/translate/big /work/runs/translate/s2
  options: --ckpt PATH ... (other checkpoints instead of RUN/best.pt),
           --root DIR (write elsewhere than the repo, for tests),
           --average RUN/epochs/epNN.pt ... (one run: export the average of those epochs' weights),
           --no-beam (skip the beam BLEU; keeps the beam metric at 0.0),
           --name NAME (the catalogue name to write)

Writes, relative to the repository root (NAME = --name; by default translate-en-LANG for a run
that read Tatoeba (the general translators), translate-en-LANG-multi30k for a caption model):
  weights/NAME.safetensors              state_dict (names below); every matrix (2-D weight)
                                        in f16, the biases in f32
  weights/NAME-seedS.safetensors        the same for each further ensemble member (seed S)
  models/NAME/config.json               "weights": one file name, or the list of members' files
  models/NAME/tokenizer.json            (the tokenizer the checkpoints were trained with)
  models/NAME/README.md                 model card
  models/NAME/model.safetensors -> ../../weights/NAME.safetensors (model-seedS.safetensors likewise)
  tests/fixtures/translate/NAME.json    parity fixture

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
from eval_translate import (Ensemble, beam_search, encode_source, eval_beam, eval_greedy,  # noqa: E402
                            greedy, load_ckpt, load_model_dir, stored_f16, val_data)
from train_translate import EOS, decode_text, read_lines  # noqa: E402
import seen_words  # noqa: E402

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
# ... and everyday text, for the models trained on it (a question, names, a contraction, a number).
EVERYDAY_TEXTS = [
    "Where is the nearest train station?",
    "Elon Musk visited Berlin on Tuesday.",
    "I don't think Tom will come tomorrow.",
    "The meeting has been moved to Thursday afternoon.",
    "Could you send me the 3 files by email, please?",
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


def make_fixture(model, tok, name, general):
    cases = []
    for text in FIXTURE_TEXTS + (EVERYDAY_TEXTS if general else []):
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

English → {lang} translation: {what},
{trained_on}.  Part of the `zoo` model zoo;
weights in {files}, joint subword tokenizer in `tokenizer.json`.{ensemble_note}

## Intended use

{intended}

## Results (validation)

| set | decoding | sacreBLEU | chrF |
| --- | --- | --- | --- |
{result_rows}{member_rows}
sacreBLEU {sacrebleu_version} `corpus_bleu(hyps, [refs])` (default 13a tokenisation, cased)
and `corpus_chrf(hyps, [refs])` (character 6-grams, beta 2; `zoo eval translate` gives both),
hypotheses = detokenised model output, references = the raw validation lines; beam search
with beam 5 and length penalty α = {alpha}.
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
| tokenizer | joint BPE over {tok_data}, {V} entries, case kept; NFC + whitespace normalisation, Metaspace + punctuation pre-tokeniser, Metaspace decoder; `<pad>`=0 `<unk>`=1 `<s>`=2 `</s>`=3 |
| `src_embedding` | Embedding({V}, {E}) |
| `encoder` | bidirectional GRU({E} → {H} per direction), PyTorch gate layout (r, z, n), `reset_after` form |
| `bridge` | Linear({H2} → {D}); s₀ = tanh(bridge([h_fwd; h_bwd])) |
| `attention` | additive: e_j = v · tanh(W [s_(t-1); h_j] + b), W: Linear({DA} → {A}), v: Linear({A} → 1, no bias); softmax over source tokens |
| `tgt_embedding` | Embedding({V}, {E}) |
| `decoder` | GRU([emb(y_(t-1)); c_t] ({EC}) → {D}) |
| `out` | Linear([s_t; c_t; emb(y_(t-1))] ({DO}) → {V}) |

Parameters: {nparams}.  {sizes} (every weight matrix
stored as f16, the biases as f32; all arithmetic in f32).

Decoding: the source is `tokenizer.encode(text)` without special tokens (at most
{max_src} tokens); the decoder starts from `<s>` and stops at `</s>` or after
floor({a} × source tokens + {b}) tokens.

## Training

{data_text}

```
{commands}
```
{init_note}
{seed_line}  Teacher forcing, cross entropy with label smoothing {ls}, Adam (lr {lr}, halved
whenever the val loss did not improve, gradient-norm clip {clip}), batches of {bs}
sentences, dropout {edrop} on embeddings, {encdrop} on encoder outputs, {odrop} on the
output-layer input (training only).  {weights_desc}  Wall-clock training on a 2-core CPU
machine (one or two torch threads, shared with other jobs at times; including any time a
run was paused): {hours}.

## Licence and limitations

The weights are derived from Multi30k, whose English side comes from Flickr30k image
captions (Young et al., 2014) and {side}; the data
are distributed by their authors for research, and the Flickr30k captions' terms limit
them to non-commercial research use.  Treat this model the same way.{tatoeba_licence}

{domain_bullets}- Small data ({pairs} pairs) and a small model: rare words are often mistranslated or
  dropped, and the model can hallucinate or repeat phrases.  It does not copy
  unknown names or numbers reliably.
- Sentences only: the model reads up to {max_src} subword tokens at once; a longer input is
  cut at sentence ends (else every {max_src} tokens) and translated piece by piece.
- Input in another language: a line whose function words or script read as another
  language ("Das ist ein Haus und ich bin hier." has seven German ones; names, @handles
  and #hashtags count for no language) is not translated in text output (an empty
  line, a note on stderr); `--json` gives the translation anyway, with `language`.
  `seen_words.txt` lists the {n_seen:,} words of the English it was trained on; `unseen`
  in `--json` is the fraction of a line's lower-case words not among them.
- Gender and other biases of the training sentences are reproduced.
"""

MULTI30K_DATA = """Multi30k task 1 (Elliott et al., "Multi30K: Multilingual English-German Image
Descriptions", Proceedings of the 5th Workshop on Vision and Language, 2016), 29,000
English–{lang} training pairs"""

# (trained_on, data_text, tatoeba_licence, domain_bullets, intended use) for caption-only runs ...
CAPTIONS = (
    "trained from scratch on Multi30k (image descriptions)",
    "Data: " + MULTI30K_DATA + "; val (1,014) for model selection and the numbers above.\n"
    "The test splits were not used.",
    "",
    """- Domain: short, literal descriptions of photographs ("A man in a blue shirt is …").
  Anything else (news, dialogue, questions, long or technical text) is translated
  poorly, often as a fluent but unrelated image description.  The general translators,
  `translate-en-de` and `translate-en-fr`, were trained for everyday text.
""",
    """English → {lang} translation of short, literal descriptions of scenes and photographs
(the Multi30k image captions it was trained on), for demos, teaching and research.
It is not a general-purpose translator: everyday sentences, questions, dialogue, news
or technical text come out poorly, often as a fluent but unrelated image description.
For those, use the general translators `translate-en-de` and `translate-en-fr`.""")
# ... and for runs on Multi30k and Tatoeba together.
GENERAL = (
    "trained on Multi30k (image descriptions) and Tatoeba (everyday sentences) together",
    "Data: " + MULTI30K_DATA + " (each seen {repeat} times an epoch), and Tatoeba: {tatoeba_pairs:,}\n"
    "everyday English–{lang} sentence pairs by the Tatoeba Project contributors (tatoeba.org),\n"
    "as packaged by ManyThings.org.  Model selection on the two val sets together (1,014 +\n"
    "2,000 pairs), which give the numbers above.  The test splits were not used.",
    "\n\nTatoeba's sentences and translations are by the Tatoeba Project contributors\n"
    "(tatoeba.org), CC-BY 2.0 France, as packaged by ManyThings.org.",
    """- Domain: short everyday sentences (Tatoeba: questions, dialogue, statements) and
  photo captions (Multi30k).  Long, technical or news text is outside its training
  data and is translated worse.
""",
    """English → {lang} translation of short everyday sentences (questions, requests,
statements, dialogue) and of photo captions, for demos, teaching, research and offline
use.  It is a small model trained on about 190k sentence pairs: good on simple
sentences, not a substitute for a large translation system on long, technical or news
text.  Names it never saw in training are often misspelt or dropped.""")


def epochs_run(ck, run_dir):
    """Number of finished epochs of the run (history.json next to the checkpoint)."""
    try:
        with open(os.path.join(run_dir, "history.json")) as f:
            return len(json.load(f)["history"])
    except (OSError, KeyError, ValueError):
        return len(ck.get("history") or []) or ck.get("epoch", 0) + 1


def manual_lrs(run_dir, last_epoch):
    """Changes made by hand on --resume up to the exported epoch (0-based), from the run's
    ckpt.pt, in order: LRs (--set-lr: {"lr"}) and name swaps (--name-swap: {"name_swap"})."""
    path = os.path.join(run_dir, "ckpt.pt")
    if not os.path.exists(path):
        return []
    ck = torch.load(path, map_location="cpu", weights_only=False)
    manual = (ck.get("manual_lr") or []) + (ck.get("recipe_changes") or [])
    return sorted((m for m in manual if m["epoch"] <= last_epoch), key=lambda m: (m["epoch"], m["batch"]))


def default_name(tgt, general):
    return f"translate-en-{tgt}" if general else f"translate-en-{tgt}-multi30k"


def init_folder(a):
    """The folder that holds the warm start now: the general runs started from the caption
    models, which were published as translate-en-LANG and renamed translate-en-LANG-multi30k
    when the general models took that name."""
    tgt = getattr(a, "tgt", "de")
    old = os.path.normpath(a.init_from)
    return f"models/{default_name(tgt, False)}" if old == f"models/translate-en-{tgt}" else a.init_from


def train_commands(args, run_dir, manual=(), tokenizer_step=True):
    """The commands that train one run of this export, from the run's own arguments."""
    a = argparse.Namespace(**args)
    lines = []
    tatoeba = getattr(a, "tatoeba", None)
    if getattr(a, "init_from", None):
        src = "--init-from {} --init-epochs {}".format(init_folder(a), a.init_epochs)
        if getattr(a, "tokenizer", None):
            # A new tokenizer: the warm start's rows are remapped to it.
            tgt = getattr(a, "tgt", "de")
            if tokenizer_step:
                extra = f" --tatoeba {tatoeba}" if tatoeba else ""
                lines.append(f"python scripts/translate_tokenizer.py --tgt {tgt}{extra} --out {a.tokenizer}")
            src = f"--tgt {tgt} --tokenizer {a.tokenizer} " + src
    else:
        tgt = getattr(a, "tgt", "de")
        tj = "/work/runs/translate/tokenizer.json" if tgt == "de" else f"/work/runs/translate/tokenizer-{tgt}.json"
        if tokenizer_step:
            lines.append(f"python scripts/translate_tokenizer.py --tgt {tgt} --out {tj}")
        src = f"--tgt {tgt} --tokenizer {tj}"
    flags = (f"--seed {a.seed} --embedding-dim {a.embedding_dim} --encoder-units {a.encoder_units} "
             f"--decoder-units {a.decoder_units} --attention-dim {a.attention_dim} --lr {a.lr}")
    if getattr(a, "warmup_steps", 0):
        flags += f" --warmup-steps {a.warmup_steps}"
    if tatoeba:
        flags += f" --tatoeba {tatoeba} --multi30k-repeat {a.multi30k_repeat}"
    lines.append(f"OMP_NUM_THREADS=1 python scripts/train_translate.py {src} \\\n    --out {run_dir} {flags}")
    for m in manual:
        if "lr" in m:
            lines.append(f"# at epoch {m['epoch'] + 1} (1-based), batch {m['batch']}: stop the run, then")
            lines.append(f"OMP_NUM_THREADS=1 python scripts/train_translate.py --out {run_dir} --resume --set-lr {m['lr']}")
        else:
            lines.append(f"# at epoch {m['epoch'] + 1} (1-based), batch {m['batch']}: stop the run, then")
            lines.append(f"OMP_NUM_THREADS=1 python scripts/train_translate.py --out {run_dir} --resume "
                         f"--name-swap {m['name_swap']}")
    return lines


def export_commands(run_dirs, name, average):
    avg = (" --average " + " ".join(os.path.join(run_dirs[0], "epochs", x) for x in average)) if average else ""
    return [f"OMP_NUM_THREADS=1 python scripts/export_translate.py --run {' '.join(run_dirs)}{avg}",
            f"OMP_NUM_THREADS=1 python scripts/eval_translate.py --model models/{name}"]


def init_note(args, manual=()):
    a = argparse.Namespace(**args)
    note = "".join(f"\nThe LR was set by hand to {m['lr']} at epoch {m['epoch'] + 1} (1-based), batch {m['batch']}, "
                   f"to reach a lower LR sooner than the val-loss rule would have in the time left.\n"
                   if "lr" in m else
                   f"\nFrom epoch {m['epoch'] + 1} (1-based), batch {m['batch']} on, a pair whose two sides share "
                   f"a capitalised word had it replaced on both sides by a CoNLL-2003 or WNUT-17 name with "
                   f"probability {m['name_swap']}, drawn afresh each epoch (`scripts/name_swap.py`), so that "
                   f"the model copies names it never saw (Tatoeba's are mostly Tom and Mary).\n"
                   for m in manual)
    if not getattr(a, "init_from", None):
        return note
    before = (f"themselves {a.init_epochs} epochs of the same recipe from random weights, seed 1, lr 0.001"
              if a.init_epochs else
              "its first member: the caption model trained on Multi30k alone, whose card gives its recipe")
    return note + (f"\nThis run continued training from the weights in `{init_folder(a)}` "
            f"({before}), "
            f"with a fresh Adam optimiser and a {a.warmup_steps}-step linear LR warm-up; "
            + (f"the embedding and output rows were remapped to the new tokenizer (rows of subwords both "
               f"vocabularies spell the same way kept, the others fresh). "
               if getattr(a, "tokenizer", None) else "the tokenizer is the one in that folder. ")
            + "Epoch numbers below count from the restart.\n")


def weights_desc(ck, ckpt):
    n = epochs_run(ck, os.path.dirname(os.path.abspath(ckpt)))
    if ck.get("averaged"):
        eps = [int(x[2:4]) + 1 for x in ck["averaged"]]
        return (f"the element-wise average of the weights after epochs "
                f"{', '.join(map(str, eps))} (1-based; chosen by val greedy BLEU) of the {n} epochs run")
    ep = ck.get("best_epoch", ck.get("epoch", 0)) + 1
    return f"the weights after epoch {ep} (the best val greedy BLEU of the {n} epochs run)"


def member_file(name, i, seed):
    """(weights/ file name, link name in the model folder) of member i."""
    if i == 0:
        return f"{name}.safetensors", "model.safetensors"
    return f"{name}-seed{seed}.safetensors", f"model-seed{seed}.safetensors"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", nargs="+", default=["/work/runs/translate/main"],
                    help="training run folder(s); several: an ensemble of their best.pt")
    ap.add_argument("--ckpt", nargs="+", help="checkpoint file(s) instead of RUN/best.pt")
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--average", nargs="+", help="export the average of these RUN/epochs/epNN.pt weights")
    ap.add_argument("--no-beam", action="store_true")
    ap.add_argument("--name", help="catalogue name (default: translate-en-LANG, or -multi30k for caption runs)")
    ap.add_argument("--max-val", type=int, help="(pipeline tests only) evaluate on the first N val lines")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ckpts = a.ckpt or [os.path.join(r, "best.pt") for r in a.run]
    assert not (a.average and len(ckpts) > 1), "--average takes one run"
    loaded = [load_ckpt(c, average=a.average) for c in ckpts]
    _, tok, ck = loaded[0]
    V = tok.get_vocab_size()
    mk = ck["model_kwargs"]
    assert mk["vocab_size"] == V
    for _, t, c in loaded[1:]:
        assert c["model_kwargs"] == mk, "ensemble members need one architecture"
        assert t.to_str() == tok.to_str(), "ensemble members need one tokenizer"
    seeds = [c["args"]["seed"] for _, _, c in loaded]
    assert len(set(seeds)) == len(seeds), f"ensemble members need distinct seeds: {seeds}"

    tgt = ck["args"].get("tgt", "de")
    run_args = ck["args"]
    general = bool(run_args.get("tatoeba"))  # a Multi30k+Tatoeba run, not a caption model
    NAME = a.name or default_name(tgt, general)
    mdir = os.path.join(a.root, "models", NAME)
    os.makedirs(mdir, exist_ok=True)
    for old in os.listdir(mdir):  # links of an earlier export
        if old.startswith("model") and old.endswith(".safetensors"):
            os.remove(os.path.join(mdir, old))
    links, sizes = [], []
    for i, ((model, _, c), seed) in enumerate(zip(loaded, seeds)):
        wname, link = member_file(NAME, i, seed)
        wpath = os.path.join(a.root, "weights", wname)
        export_weights(model, wpath, NAME)
        sizes.append(os.path.getsize(wpath))
        print(f"wrote {wpath}: {sizes[-1] / 2**20:.2f} MiB")
        if sizes[-1] > SIZE_LIMIT:
            print("WARNING: weights exceed 25 MiB")
        os.symlink(f"../../weights/{wname}", os.path.join(mdir, link))
        links.append(link)
    with open(os.path.join(mdir, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(ck["tokenizer_json"])

    cfg = {"zoo_format": 1, "task": "translate", "name": NAME,
           "weights": links[0] if len(links) == 1 else links,
           "source_lang": "en", "target_lang": tgt, "vocab_size": V,
           "embedding_dim": mk["embedding_dim"], "encoder_units": mk["encoder_units"],
           "decoder_units": mk["decoder_units"], "attention_dim": mk["attention_dim"],
           "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3,
           "max_source_tokens": MAX_SOURCE_TOKENS, "max_len_a": MAX_LEN_A, "max_len_b": MAX_LEN_B,
           "beam_size": BEAM, "length_penalty": ALPHA,
           "metrics": {"multi30k_val_bleu_greedy": 0.0, "multi30k_val_bleu_beam5": 0.0},
           "seed": seeds[0] if len(seeds) == 1 else seeds}
    cfg_path = os.path.join(mdir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    # Everything below runs on the model as reloaded from the written files.
    model, tok, _ = load_model_dir(mdir)
    # (card name, metric key, sources, references) per validation set.
    sets = [("Multi30k val (1,014)", "multi30k", *val_data(a.max_val, tgt=tgt))]
    if general:
        tdir = run_args["tatoeba"]
        sets.append(("Tatoeba val (2,000)", "tatoeba",
                     read_lines(os.path.join(tdir, f"val.en-{tgt}.en"), a.max_val),
                     read_lines(os.path.join(tdir, f"val.en-{tgt}.{tgt}"), a.max_val)))

    import sacrebleu

    def score(m, label, src, refs):
        """(BLEU greedy, BLEU beam, chrF greedy, chrF beam)."""
        t0 = time.time()
        g, hyps = eval_greedy(m, tok, src, refs, MAX_SOURCE_TOKENS)
        gc = sacrebleu.corpus_chrf(hyps, [refs]).score
        print(f"{label}: val BLEU greedy {g:.2f} chrF {gc:.2f} ({time.time() - t0:.0f}s)", flush=True)
        b = bc = 0.0
        if not a.no_beam:
            t0 = time.time()
            b, hyps = eval_beam(m, tok, src, refs, BEAM, ALPHA, MAX_SOURCE_TOKENS)
            bc = sacrebleu.corpus_chrf(hyps, [refs]).score
            print(f"{label}: val BLEU beam{BEAM} alpha={ALPHA} {b:.2f} chrF {bc:.2f} ({time.time() - t0:.0f}s)",
                  flush=True)
        return g, b, gc, bc

    scores = {key: score(model, f"{NAME} {key}", src, refs) for _, key, src, refs in sets}
    # Members alone: caption BLEU only (what the ensemble is judged against).
    member_scores = ([score(m, f"member seed {s}", *sets[0][2:])[:2] for m, s in zip(model.members, seeds)]
                     if isinstance(model, Ensemble) else [])
    cfg["metrics"] = {}
    if general:  # what `zoo list` shows: the everyday-text score
        cfg["headline_metric"] = "tatoeba_val_bleu_beam5" if not a.no_beam else "tatoeba_val_bleu_greedy"
    for key, (g, b, gc, bc) in scores.items():
        cfg["metrics"].update({f"{key}_val_bleu_greedy": round(g, 2), f"{key}_val_bleu_beam5": round(b, 2),
                               f"{key}_val_chrf_greedy": round(gc, 2), f"{key}_val_chrf_beam5": round(bc, 2)})
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")

    fx = make_fixture(model, tok, NAME, general)
    fpath = os.path.join(a.root, "tests", "fixtures", "translate", f"{NAME}.json")
    os.makedirs(os.path.dirname(fpath), exist_ok=True)
    with open(fpath, "w", encoding="utf-8") as f:
        f.write(compact_json(fx) + "\n")
    for c in fx["cases"]:
        print(f"  {c['text']}\n    greedy: {c['greedy_text']}\n    beam:   {c['beam_text']}")

    args = ck["args"]
    nparams = sum(p.numel() for p in loaded[0][0].parameters())
    E, H, D, A = mk["embedding_dim"], mk["encoder_units"], mk["decoder_units"], mk["attention_dim"]
    run_dirs = [os.path.dirname(os.path.abspath(c)) for c in ckpts]
    n = len(loaded)
    commands = []
    descs = []
    manuals = []
    for i, ((_, _, c), ckpt, run_dir) in enumerate(zip(loaded, ckpts, run_dirs)):
        last = (max(int(x[2:4]) for x in c["averaged"]) if c.get("averaged")
                else c.get("best_epoch", c.get("epoch", 0)))
        manual = manual_lrs(run_dir, last)  # reads the run's ckpt.pt once
        manuals.append(manual)
        commands += train_commands(c["args"], run_dir, manual, tokenizer_step=(i == 0))
        desc = weights_desc(c, ckpt)
        descs.append(desc[0].upper() + desc[1:] + "." if n == 1 else f"Seed {seeds[i]}: {desc}.")
    commands += export_commands(run_dirs, NAME, ck.get("averaged"))
    hours = [c.get("train_seconds", 0.0) / 3600 for _, _, c in loaded]
    cpu = [c.get("cpu_seconds") for _, _, c in loaded]
    hours_text = " + ".join(f"{h:.1f} h" for h in hours)
    if all(cpu):
        hours_text += "; process CPU time " + " + ".join(f"{x / 3600:.1f} h" for x in cpu)
    files = " and ".join(f"`{l}`" for l in links)
    # The English it read: Multi30k's, plus Tatoeba's where the run used it.
    train_texts = [os.path.join(args.get("data", "/work/shared/data/multi30k"), "train.en")]
    if args.get("tatoeba"):
        train_texts.append(os.path.join(args["tatoeba"], f"train.en-{tgt}.en"))
    n_seen = seen_words.write(mdir, texts=train_texts)
    kind = GENERAL if general else CAPTIONS
    n_tatoeba = len(read_lines(train_texts[1])) if general else 0
    card = CARD.format(
        n_seen=n_seen,
        name=NAME, tgt=tgt, lang=LANGS[tgt][0], side=LANGS[tgt][1],
        what=("a GRU encoder–decoder with additive (Bahdanau) attention" if n == 1 else
              f"an ensemble of {n} GRU encoder–decoders with additive (Bahdanau) attention, "
              f"the same recipe trained with seeds {', '.join(map(str, seeds))}"),
        files=files,
        ensemble_note=("" if n == 1 else
                       "\n\nThe members are decoded together, as one model: at every step each reads the "
                       "same output prefix and the next-token distribution is the renormalised geometric "
                       "mean of theirs (`log_softmax` of the mean of their log-probabilities).  Each "
                       "member file is a complete model: a folder whose `config.json` names one of them "
                       "is a single translator."),
        result_rows="".join(
            f"| {label} | greedy | {scores[key][0]:.2f} | {scores[key][2]:.2f} |\n"
            f"| {label} | beam 5 | {scores[key][1]:.2f} | {scores[key][3]:.2f} |\n"
            for label, key, _, _ in sets),
        member_rows=("" if n == 1 else "".join(
            f"| {sets[0][0]} | seed {s} alone, greedy / beam 5 | {mg:.2f} / {mb:.2f} | |\n"
            for s, (mg, mb) in zip(seeds, member_scores))),
        trained_on=kind[0],
        tok_data=(f"Multi30k and Tatoeba train (English + {LANGS[tgt][0]})"
                  if general and run_args.get("tokenizer") else f"train.en + train.{tgt}"),
        data_text=kind[1].format(lang=LANGS[tgt][0], repeat=run_args.get("multi30k_repeat", 1),
                                 tatoeba_pairs=n_tatoeba),
        tatoeba_licence=kind[2],
        domain_bullets=kind[3],
        intended=kind[4].format(lang=LANGS[tgt][0]),
        pairs=f"29k + {n_tatoeba / 1000:.0f}k" if general else "29k",
        alpha=ALPHA, sacrebleu_version=sacrebleu.__version__,
        best_line=("" if not a.no_beam else "\n(Beam BLEU was not computed for this export.)"),
        V=V, E=E, H=H, H2=2 * H, D=D, A=A, DA=D + 2 * H, EC=E + 2 * H, DO=D + 2 * H + E,
        nparams=(f"{nparams:,}" if n == 1 else f"{nparams:,} per member, {n * nparams:,} in all"),
        sizes=", ".join(f"`{l}`: {sz / 2**20:.2f} MiB" for l, sz in zip(links, sizes)),
        max_src=MAX_SOURCE_TOKENS, a=MAX_LEN_A, b=MAX_LEN_B,
        seed_line=(f"Seed {seeds[0]}." if n == 1 else f"Seeds {', '.join(map(str, seeds))} (one run each)."),
        ls=args["label_smoothing"], lr=args["lr"], clip=args["clip"],
        bs=args["batch_size"], edrop=args["emb_dropout"], encdrop=args["enc_dropout"],
        odrop=args["out_dropout"], weights_desc=" ".join(descs),
        commands="\n".join(commands),
        init_note="".join(init_note(c["args"], m) for (_, _, c), m in zip(loaded, manuals)),
        hours=hours_text)
    with open(os.path.join(mdir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    print(json.dumps(cfg["metrics"]), f"params {nparams} x {n}", f"{sum(sizes)} bytes",
          datetime.datetime.now().strftime("%H:%M"))


if __name__ == "__main__":
    main()
