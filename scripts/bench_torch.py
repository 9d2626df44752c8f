#!/usr/bin/env python3
"""zoo's recurrent layers against PyTorch's on the same shapes, alternating in one run.

For every (cell, shape, directions) it times PyTorch's nn.LSTM / nn.GRU / nn.RNN
(batch_first, no grad, --threads threads) and, for the LSTM, PyTorch's
dynamic-quantized LSTM (int8 weights); then `zoo bench --json` on the same
shape; and repeats that pair --rounds times, alternating, so that both see
the same machine state. Each figure is the median over rounds of each
side's median over --iters forward passes (more where those would take under
--min-ms: the same count for both sides). It also measures a plain sgemm
(torch.mm, 1024^3) as the machine's roof and reports each layer's GFLOP/s
(2·batch·steps·(input+units)·gates·units per direction), against the median
of the sgemm rates measured in that row's own rounds.

  python scripts/bench_torch.py                       # the default shapes, 2 threads
  python scripts/bench_torch.py --shape 32x64x128x256 --cell lstm --rounds 5

Prints a Markdown table: ms per forward, and PyTorch / zoo (> 1: zoo is faster), for zoo's f32
and int8 weights (`zoo bench --dtype int8`).
Pause training jobs first (kill -STOP PID): the figures are only as quiet as the machine.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import warnings

import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHAPES = ["32x64x128x256", "1x20x50x150", "64x128x300x512"]
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def median_ms(f, iters):
    f()
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


def torch_ms(cell, b, t, i, h, dirs, iters, quantized=False):
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "simple_rnn": torch.nn.RNN}[cell]
    m = cls(i, h, batch_first=True, bidirectional=dirs == 2).eval()
    if quantized:
        # quantize_dynamic swaps submodules, so the LSTM goes in a holder.
        holder = torch.ao.quantization.quantize_dynamic(torch.nn.ModuleDict({"rnn": m}), {torch.nn.LSTM},
                                                        dtype=torch.qint8)
        m = holder["rnn"]
        assert "quantized" in type(m).__module__, type(m)
    x = torch.randn(b, t, i)
    with torch.no_grad():
        return median_ms(lambda: m(x), iters)


def zoo_ms(zoo, cell, shape, dirs, iters):
    """{dtype: median ms} for f32 and int8 weights."""
    out = subprocess.run([zoo, "bench", "--json", "--cell", cell, "--shape", shape, "--dirs", str(dirs),
                          "--iters", str(iters), "--dtype", "f32", "--dtype", "int8"],
                         check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.strip().splitlines()]
    return {r["dtype"]: r["median_ms"] for r in rows}


def sgemm_gflops(iters=10, n=1024):
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = median_ms(lambda: torch.mm(a, b), iters)
    return 2 * n ** 3 / (ms * 1e-3) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default=os.path.join(ROOT, "target", "release", "zoo"))
    ap.add_argument("--shape", action="append", help="BxTxIxH (repeatable)")
    ap.add_argument("--cell", action="append", choices=list(GATES), help="(repeatable)")
    ap.add_argument("--dirs", type=int, action="append", choices=[1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=20, help="forward passes per measurement, at least")
    ap.add_argument("--min-ms", type=float, default=100.0,
                    help="more passes where --iters would take less than this (both sides get the same count): "
                         "ten 0.1 ms passes measured zoo's first-forwards warm-up (page faults in gemm's "
                         "packing buffer), 0.14 ms against 0.09 from the eleventh on")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(a.threads))
    # The roof is measured in every round of every row, next to the layers:
    # this machine's sgemm rate moves by 2x within an hour.
    roofs = [sgemm_gflops()]
    print(f"torch {torch.__version__}, {a.threads} threads; sgemm 1024^3 at the start: {roofs[0]:.0f} GFLOP/s",
          file=sys.stderr)
    print("| cell | batch×steps×input→units | dirs | PyTorch (ms) | zoo (ms) | PyTorch / zoo | zoo GFLOP/s (% of sgemm) "
          "| zoo int8 (ms) | PyTorch / zoo int8 | PyTorch dyn-int8 LSTM (ms) | PyTorch dyn-int8 / zoo int8 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for shape in a.shape or SHAPES:
        b, t, i, h = (int(v) for v in shape.split("x"))
        for cell in a.cell or list(GATES):
            for dirs in a.dirs or [1, 2]:
                pt, zo, zq, q, row_roofs = [], [], [], [], []
                probe = torch_ms(cell, b, t, i, h, dirs, 3)
                iters = max(a.iters, math.ceil(a.min_ms / max(probe, 1e-3)))
                for _ in range(a.rounds):
                    row_roofs.append(sgemm_gflops())
                    pt.append(torch_ms(cell, b, t, i, h, dirs, iters))
                    z = zoo_ms(a.zoo, cell, shape, dirs, iters)
                    zo.append(z["f32"])
                    zq.append(z["int8"])
                    if cell == "lstm":
                        q.append(torch_ms(cell, b, t, i, h, dirs, iters, quantized=True))
                p, z, z8 = statistics.median(pt), statistics.median(zo), statistics.median(zq)
                flops = 2 * b * t * (i + h) * GATES[cell] * h * dirs
                gf = flops / (z * 1e-3) / 1e9
                roof = statistics.median(row_roofs)
                roofs += row_roofs
                qm = statistics.median(q) if q else None
                qs = f"{qm:.3f} | {qm / z8:.2f}×" if q else "— | —"
                print(f"| {cell} | {b}×{t}×{i}→{h} | {dirs} | {p:.3f} | {z:.3f} | {p / z:.2f}× | "
                      f"{gf:.0f} ({100 * gf / roof:.0f}%) | {z8:.3f} | {p / z8:.2f}× | {qs} |", flush=True)
    print(f"sgemm 1024^3 across the run: median {statistics.median(roofs):.0f}, {min(roofs):.0f}-{max(roofs):.0f} "
          "GFLOP/s; each row's % is against the median of its own rounds' sgemm", file=sys.stderr)


if __name__ == "__main__":
    main()
