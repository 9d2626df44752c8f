#!/usr/bin/env python3
"""Turn SST's lower-cased PTB-tokenised text back into natural text.

    does n't -> doesn't     it 's -> it's      ca n't -> can't
    -lrb- x -rrb- -> (x)    `` x '' -> "x"     ` x ' -> 'x'
    no space before , . ! ? ; : ...            can not -> cannot
    \\/ -> /                 $ 5 -> $5          first letter capitalised (and "i" -> "I")

Used to measure how the sentiment models do on text as users type it.

CLI:  python scripts/sst_detok.py [FILE.tsv|-]   (prints one natural sentence per line;
      a TSV with a header row and a `label` column is handled, else plain lines)
"""
import re
import sys

_RULES = [
    (re.compile(r"\\/"), "/"),
    (re.compile(r"\\\*"), "*"),
    # brackets
    (re.compile(r"-lrb-\s*"), "("),
    (re.compile(r"\s*-rrb-"), ")"),
    (re.compile(r"-lsb-\s*"), "["),
    (re.compile(r"\s*-rsb-"), "]"),
    (re.compile(r"-lcb-\s*"), "{"),
    (re.compile(r"\s*-rcb-"), "}"),
    # double quotes: `` opens, '' closes
    (re.compile(r"``\s*"), '"'),
    (re.compile(r"\s*''"), '"'),
    # single quotes: ` opens
    (re.compile(r"`\s*"), "'"),
    # contractions and clitics
    (re.compile(r"\s+n't\b"), "n't"),
    (re.compile(r"\s+'(s|re|ve|ll|d|m)\b"), r"'\1"),
    (re.compile(r"\bcan not\b"), "cannot"),
    (re.compile(r"\bgon na\b"), "gonna"),
    (re.compile(r"\bwan na\b"), "wanna"),
    (re.compile(r"\bgot ta\b"), "gotta"),
    # closing single quote / possessive plural: "kids ' toys" -> "kids' toys"
    (re.compile(r"([\w.!?,])\s+'(\s|$)"), r"\1'\2"),
    # no space before punctuation
    (re.compile(r"\s+(\.\.\.|[,.!?;:%])"), r"\1"),
    # currency sticks to the number
    (re.compile(r"([$#])\s+(?=\d)"), r"\1"),
    (re.compile(r"\s+"), " "),
]
_I = re.compile(r"\bi\b")
_FIRST = re.compile(r"^(\W*)([a-z])")


def detokenize(text: str) -> str:
    s = " " + text.strip() + " "
    for pat, rep in _RULES:
        s = pat.sub(rep, s)
    s = s.strip()
    s = _I.sub("I", s)
    s = _FIRST.sub(lambda m: m.group(1) + m.group(2).upper(), s)
    return s


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "-"
    f = sys.stdin if path == "-" else open(path, encoding="utf-8")
    lines = [l.rstrip("\r\n") for l in f]
    label_col = None
    if lines and "label" in lines[0].split("\t"):
        header = lines[0].split("\t")
        label_col = header.index("label")
        lines = lines[1:]
    try:
        _print(lines, label_col)
    except BrokenPipeError:
        pass


def _print(lines, label_col):
    for l in lines:
        if not l:
            continue
        if label_col is not None:
            parts = l.split("\t")
            print(f"{parts[label_col]}\t{detokenize(parts[1 - label_col])}")
        else:
            print(detokenize(l))


if __name__ == "__main__":
    main()
