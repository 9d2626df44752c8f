#!/usr/bin/env python3
"""Randomised parity fixtures for the zoo recurrent layers.

An independent second generator (it shares no code with gen_fixtures.py): it
draws random PyTorch / Keras 3 layer configurations, runs them through the
framework itself and writes one safetensors fixture per case, following the
schema of tests/fixtures/rnn/README.md.

    KERAS_BACKEND=torch OMP_NUM_THREADS=1 \
        python scripts/gen_random_fixtures.py --out /tmp/zoo_fixtures_alt1 --seed 1

The run is deterministic for a given --seed (CPU, one thread).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

import keras  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

if keras.backend.backend() != "torch":
    sys.exit("run with KERAS_BACKEND=torch")

WEIGHT_RANGE = 0.6
CELLS = ("simple_rnn", "lstm", "gru")
MERGE_MODES = ("concat", "sum", "mul", "ave")


def f32(t):
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(t, dtype=np.float32))


def coin(rng, p=0.5):
    return bool(rng.random() < p)


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------

def pytorch_case(rng, cell, input_size, units, batch, time):
    num_layers = int(rng.integers(1, 4))
    bidirectional = coin(rng)
    bias = coin(rng, 0.75)
    nonlinearity = str(rng.choice(["tanh", "relu"])) if cell == "simple_rnn" else "tanh"
    use_lengths = coin(rng)
    use_h0 = coin(rng)
    dirs = 2 if bidirectional else 1

    common = dict(input_size=input_size, hidden_size=units, num_layers=num_layers,
                  bias=bias, batch_first=True, bidirectional=bidirectional)
    if cell == "simple_rnn":
        module = torch.nn.RNN(nonlinearity=nonlinearity, **common)
    elif cell == "lstm":
        module = torch.nn.LSTM(**common)
    else:
        module = torch.nn.GRU(**common)
    module.eval()

    tensors = {}
    new_state = {}
    for name, p in module.state_dict().items():
        w = rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE, size=tuple(p.shape)).astype(np.float32)
        new_state[name] = torch.from_numpy(w)
        tensors[name] = w
    module.load_state_dict(new_state)

    x = rng.standard_normal((batch, time, input_size)).astype(np.float32)
    tensors["input"] = x
    xt = torch.from_numpy(x)

    hx = None
    if use_h0:
        shape = (num_layers * dirs, batch, units)
        h0 = rng.standard_normal(shape).astype(np.float32)
        tensors["h0"] = h0
        if cell == "lstm":
            c0 = rng.standard_normal(shape).astype(np.float32)
            tensors["c0"] = c0
            hx = (torch.from_numpy(h0), torch.from_numpy(c0))
        else:
            hx = torch.from_numpy(h0)

    with torch.no_grad():
        if use_lengths:
            lengths = rng.integers(1, time + 1, size=batch).astype(np.int64)
            tensors["lengths"] = lengths
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                xt, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
            out_packed, state = module(packed, hx)
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out_packed, batch_first=True, total_length=time)
        else:
            out, state = module(xt, hx)

    tensors["output"] = f32(out)
    if cell == "lstm":
        tensors["h_n"], tensors["c_n"] = f32(state[0]), f32(state[1])
    else:
        tensors["h_n"] = f32(state)

    cfg = dict(
        framework="pytorch", cell=cell, input_size=input_size, units=units,
        num_layers=num_layers, bidirectional=bidirectional, merge_mode=None,
        return_sequences=True, go_backwards=False, return_state=True,
        reset_after=None, activation=nonlinearity, recurrent_activation=None,
        use_bias=bias,
    )
    tags = [f"L{num_layers}"]
    if bidirectional:
        tags.append("bi")
    if cell == "simple_rnn":
        tags.append(nonlinearity)
    if not bias:
        tags.append("nobias")
    if use_lengths:
        tags.append("lengths")
    if use_h0:
        tags.append("h0")
    return cfg, tensors, tags


# --------------------------------------------------------------------------
# Keras 3
# --------------------------------------------------------------------------

def keras_rnn(cell, units, opts):
    kw = dict(units=units, activation=opts["activation"], use_bias=opts["use_bias"],
              return_sequences=opts["return_sequences"],
              return_state=opts["return_state"], go_backwards=opts["go_backwards"])
    if cell == "simple_rnn":
        return keras.layers.SimpleRNN(**kw)
    kw["recurrent_activation"] = opts["recurrent_activation"]
    if cell == "lstm":
        return keras.layers.LSTM(**kw)
    return keras.layers.GRU(reset_after=opts["reset_after"], **kw)


def fill_cell(rng, keras_cell, prefix, tensors):
    expected = {"kernel", "recurrent_kernel"} | ({"bias"} if keras_cell.use_bias else set())
    got = set()
    for var in keras_cell.weights:
        # Variable paths look like ".../kernel"; keep the last component.
        name = var.path.split("/")[-1]
        if name not in expected:
            raise RuntimeError(f"unexpected Keras weight {var.path}")
        shape = tuple(int(s) for s in var.shape)
        w = rng.uniform(-WEIGHT_RANGE, WEIGHT_RANGE, size=shape).astype(np.float32)
        var.assign(w)
        tensors[prefix + name] = w
        got.add(name)
    if got != expected:
        raise RuntimeError(f"weights {sorted(got)}, expected {sorted(expected)}")


def keras_case(rng, cell, input_size, units, batch, time, bidi_zero=False):
    bidirectional = coin(rng, 0.4)
    opts = dict(
        return_sequences=coin(rng),
        return_state=coin(rng),
        go_backwards=(not bidirectional) and coin(rng, 0.35),
        activation=str(rng.choice(["tanh", "relu"])) if coin(rng, 0.3) else "tanh",
        use_bias=coin(rng, 0.75),
        recurrent_activation=None,
        reset_after=None,
    )
    if cell in ("lstm", "gru"):
        opts["recurrent_activation"] = "hard_sigmoid" if coin(rng, 0.35) else "sigmoid"
    if cell == "gru":
        opts["reset_after"] = coin(rng)
    merge_mode = str(rng.choice(MERGE_MODES)) if bidirectional else None
    use_mask = coin(rng)
    use_init = (not bidirectional) and coin(rng, 0.4)

    inner = keras_rnn(cell, units, opts)
    layer = keras.layers.Bidirectional(inner, merge_mode=merge_mode) if bidirectional else inner
    layer.build((batch, time, input_size))

    tensors = {}
    if bidirectional:
        fill_cell(rng, layer.forward_layer.cell, "forward/", tensors)
        fill_cell(rng, layer.backward_layer.cell, "backward/", tensors)
    else:
        fill_cell(rng, layer.cell, "", tensors)
    n_expected = len(tensors)
    if len(layer.weights) != n_expected:
        raise RuntimeError(f"layer has {len(layer.weights)} weights, set {n_expected}")

    x = rng.standard_normal((batch, time, input_size)).astype(np.float32)
    tensors["input"] = x
    kwargs = {}
    if use_mask:
        # Plain layers get some fully masked (0-length) rows, which Keras 3
        # accepts (state stays initial, output zeros); Bidirectional rows
        # keep at least one step unless --bidi-zero-lengths.
        lo = 1 if bidirectional and not bidi_zero else 0
        lengths = rng.integers(lo, time + 1, size=batch).astype(np.int64)
        if lo == 0 and batch > 1 and coin(rng, 0.35):
            lengths[int(rng.integers(0, batch))] = 0
        tensors["lengths"] = lengths
        mask = np.arange(time)[None, :] < lengths[:, None]
        kwargs["mask"] = keras.ops.convert_to_tensor(mask)
    if use_init:
        h0 = rng.standard_normal((batch, units)).astype(np.float32)
        tensors["h0"] = h0
        init = [keras.ops.convert_to_tensor(h0)]
        if cell == "lstm":
            c0 = rng.standard_normal((batch, units)).astype(np.float32)
            tensors["c0"] = c0
            init.append(keras.ops.convert_to_tensor(c0))
        kwargs["initial_state"] = init

    with torch.no_grad():
        res = layer(keras.ops.convert_to_tensor(x), **kwargs)

    n_state = 2 if cell == "lstm" else 1
    if opts["return_state"]:
        res = list(res)
        out, states = res[0], res[1:]
        if bidirectional:
            assert len(states) == 2 * n_state, len(states)
            fw, bw = states[:n_state], states[n_state:]
            tensors["h_n"] = np.stack([f32(fw[0]), f32(bw[0])])
            if cell == "lstm":
                tensors["c_n"] = np.stack([f32(fw[1]), f32(bw[1])])
        else:
            assert len(states) == n_state, len(states)
            tensors["h_n"] = f32(states[0])
            if cell == "lstm":
                tensors["c_n"] = f32(states[1])
    else:
        out = res
    tensors["output"] = f32(out)

    width = 2 * units if merge_mode == "concat" else units
    want = (batch, time, width) if opts["return_sequences"] else (batch, width)
    if tensors["output"].shape != want:
        raise RuntimeError(f"output shape {tensors['output'].shape}, expected {want}")

    cfg = dict(
        framework="keras", cell=cell, input_size=input_size, units=units,
        num_layers=1, bidirectional=bidirectional, merge_mode=merge_mode,
        return_sequences=opts["return_sequences"], go_backwards=opts["go_backwards"],
        return_state=opts["return_state"], reset_after=opts["reset_after"],
        activation=opts["activation"],
        recurrent_activation=opts["recurrent_activation"], use_bias=opts["use_bias"],
    )
    tags = []
    if bidirectional:
        tags.append(f"bi_{merge_mode}")
    if opts["go_backwards"]:
        tags.append("back")
    if opts["activation"] != "tanh":
        tags.append(opts["activation"])
    if opts["recurrent_activation"] == "hard_sigmoid":
        tags.append("hsig")
    if cell == "gru":
        tags.append("ra" if opts["reset_after"] else "nora")
    if not opts["use_bias"]:
        tags.append("nobias")
    if use_mask:
        tags.append("mask")
    if use_init:
        tags.append("init")
    tags.append("seq" if opts["return_sequences"] else "last")
    if opts["return_state"]:
        tags.append("state")
    return cfg, tensors, tags


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--bidi-zero-lengths", action="store_true",
                    help="also allow 0-length rows in Keras Bidirectional masks")
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)  # only affects the overwritten initialisers
    for i in range(args.count):
        rng = np.random.default_rng([args.seed, i])
        framework = str(rng.choice(["pytorch", "keras"]))
        cell = str(rng.choice(CELLS))
        input_size = int(rng.integers(1, 13))
        units = int(rng.integers(1, 10))
        batch = int(rng.integers(1, 6))
        time = int(rng.integers(1, 9))
        if framework == "pytorch":
            cfg, tensors, tags = pytorch_case(rng, cell, input_size, units, batch, time)
        else:
            cfg, tensors, tags = keras_case(rng, cell, input_size, units, batch, time,
                                            args.bidi_zero_lengths)
        for k, v in tensors.items():
            if v.dtype not in (np.float32, np.int64):
                raise RuntimeError(f"{k} has dtype {v.dtype}")
            if v.dtype == np.float32 and not np.all(np.isfinite(v)):
                raise RuntimeError(f"{k} is not finite")
        prefix = "pt" if framework == "pytorch" else "keras"
        name = "_".join([f"s{args.seed}", f"{i:03d}", prefix, cell,
                         f"i{input_size}u{units}b{batch}t{time}"] + tags)
        path = os.path.join(args.out, name + ".safetensors")
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path,
                  metadata={"config": json.dumps(cfg)})
        print(name)


if __name__ == "__main__":
    main()
