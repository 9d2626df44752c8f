"""Check that `zoo predict` reproduces Keras' `model.predict` on .keras files.

    python scripts/check_keras_file.py MODEL.keras [MODEL2.keras ...]
        [--zoo PATH] [--batch 4] [--steps 12] [--seed 0] [--no-pad]

For each model: load it with Keras, make random inputs matching
`model.inputs` (token ids in [1, vocab) for integer inputs and for float
inputs read by an Embedding, as a Sequential with `input_shape=` makes;
vocab is the first Embedding's `input_dim`, else 10; the tail of every
other row is set to 0 so that masking is exercised; other float inputs:
N(0, 1); `None` axes become --steps), write them to an
.npz (key `input` for one input, else the Keras input names), run
`zoo predict`, and compare every output to Keras' with
|zoo - keras| <= 1e-5 + 1e-5 * |keras|.

Prints one line per model: PASS; FAIL (wrong numbers or shapes, a panic,
a multi-line error); REFUSED (zoo declined with a one-line error, shown);
or ERROR (Keras itself could not run the inputs, e.g. a sequence shorter
than a Conv1D kernel: try a larger --steps). Exits 1 on any FAIL or ERROR.
Any KERAS_BACKEND will do (TensorFlow is not needed).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ATOL = RTOL = 1e-5


def walk(layer):
    """All layers of a model, depth first, nested models included."""
    for sub in getattr(layer, "layers", []):
        yield sub
        yield from walk(sub)


def vocab_size(model):
    for layer in walk(model):
        if layer.__class__.__name__ == "Embedding":
            return int(layer.input_dim)
    return 10


def make_inputs(model, batch, steps, rng, pad):
    """Random inputs for `model`, keyed by the names zoo matches on."""
    vocab = vocab_size(model)
    embedded = [  # the tensors that Embedding layers read
        x
        for l in walk(model)
        if l.__class__.__name__ == "Embedding"
        for node in l._inbound_nodes
        for x in node.input_tensors
    ]
    names, arrays = [], []
    for t in model.inputs:
        shape = [batch] + [steps if d is None else int(d) for d in t.shape[1:]]
        dtype = str(t.dtype)
        if "int" in dtype or any(t is x for x in embedded):
            x = rng.integers(1, max(vocab, 2), size=shape).astype(dtype)
            if pad and len(shape) >= 2:
                for row in range(1, batch, 2):  # every other row: a padded tail
                    x[row, shape[1] - (row * shape[1]) // (2 * batch) - 1 :] = 0
        elif dtype == "bool":
            x = rng.integers(0, 2, size=shape).astype(bool)
        else:
            x = rng.standard_normal(shape).astype(dtype)
        names.append(t.name.split(":")[0])
        arrays.append(x)
    return names, arrays


def zoo_error(stderr, rc):
    """(verdict, message) for a zoo run that exited with `rc` != 0."""
    lines = [l.strip() for l in stderr.strip().splitlines() if l.strip()]
    if "panicked" in stderr:
        at = next(i for i, l in enumerate(lines) if "panicked" in l)
        return "FAIL", f"PANIC (rc {rc}): " + " ".join(lines[at : at + 2])
    if len(lines) != 1 or rc != 1:
        return "FAIL", f"rc {rc}, {len(lines)} lines on stderr: " + " | ".join(lines[:4])
    return "REFUSED", lines[0]


def check(path, zoo, args, rng):
    import keras

    model = keras.saving.load_model(path, compile=False)
    names, xs = make_inputs(model, args.batch, args.steps, rng, not args.no_pad)
    try:
        refs = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    except Exception as e:
        msg = [l for l in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if l.strip()]
        return "ERROR", "Keras: " + (msg[1] if len(msg) > 1 else msg[0] if msg else repr(e))
    refs = [np.asarray(r) for r in (refs if isinstance(refs, (list, tuple)) else [refs])]
    with tempfile.TemporaryDirectory() as tmp:
        x_path, y_path = os.path.join(tmp, "x.npz"), os.path.join(tmp, "y.npz")
        np.savez(x_path, **({"input": xs[0]} if len(xs) == 1 else dict(zip(names, xs))))
        run = subprocess.run(
            [zoo, "predict", path, "--input", x_path, "--output", y_path, "--device", "cpu"],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            return zoo_error(run.stderr, run.returncode)
        with np.load(y_path) as f:
            outs = dict(f)
    keys = ["output"] if len(refs) == 1 else [f"output_{i}" for i in range(len(refs))]
    if sorted(outs) != sorted(keys):
        return "FAIL", f"zoo wrote outputs {sorted(outs)}, expected {keys}"
    worst, shapes, ok = 0.0, [], True
    for key, ref in zip(keys, refs):
        got = outs[key]
        shapes.append("x".join(map(str, ref.shape)))
        if got.shape != ref.shape:
            return "FAIL", f"{key}: zoo shape {got.shape}, Keras {ref.shape}"
        err = np.abs(got.astype(np.float64) - ref)
        worst = max(worst, float(err.max(initial=0.0)))
        ok &= bool(np.all(err <= ATOL + RTOL * np.abs(ref)))
    return ("PASS" if ok else "FAIL"), f"max abs err {worst:.2e}, outputs {', '.join(shapes)}"


def main():
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--zoo", default=str(root / "target" / "release" / "zoo"))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=12, help="length of `None` axes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pad", action="store_true", help="no zero tails in integer inputs")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    failed = False
    for path in args.models:
        try:
            verdict, detail = check(path, args.zoo, args, rng)
        except Exception as e:  # Keras could not load or run the model
            verdict, detail = "FAIL", f"checker: {type(e).__name__}: {e}".splitlines()[0]
        failed |= verdict in ("FAIL", "ERROR")
        print(f"{verdict:8} {path}: {detail}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
