# Written by a helper that never saw zoo's source, as an independent check of
# Keras masks (issue 33): KERAS_BACKEND=torch python scripts/independent/keras_mask_models.py
# then python scripts/independent/keras_mask_check.py (OUT=folder, default /tmp/keras_check).
# It found that Keras' Bidirectional zeroes masked steps; three of its models are
# committed as tests/fixtures/graph/helper_*.
"""Run zoo predict on every model dir and compare with Keras' expected outputs (atol=rtol=1e-5)."""
import os, sys, json, subprocess
import numpy as np

ROOT = os.environ.get("OUT", "/tmp/keras_check")  # where the models go
ZOO = os.environ.get("ZOO", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../target/release/zoo"))
TOL = 1e-5


def run(d):
    p = subprocess.run([ZOO, "predict", os.path.join(d, "model.keras"), "--input", os.path.join(d, "inputs.npz")],
                       capture_output=True, text=True, timeout=300)
    exp = dict(np.load(os.path.join(d, "expected.npz")))
    errline = next((l for l in p.stderr.splitlines()[::-1] if l.strip()), "")
    if p.returncode != 0:
        return "REFUSED", None, f"rc={p.returncode}: {errline}"
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    worst, bad = 0.0, []
    for key, e in exp.items():
        if not rows or key not in rows[0]:
            return "FAIL", None, f"missing key {key}; got {list(rows[0]) if rows else 'no rows'}"
        got = np.array([r[key] for r in rows], dtype=np.float64)
        if got.shape != e.shape:
            got = got.reshape(e.shape) if got.size == e.size else got
            if got.shape != e.shape:
                return "FAIL", None, f"{key}: shape {got.shape} vs keras {e.shape}"
        diff = np.abs(got - e)
        worst = max(worst, float(diff.max()))
        viol = diff > TOL + TOL * np.abs(e)
        if viol.any():
            rowsbad = sorted(set(np.argwhere(viol)[:, 0].tolist()))
            bad.append(f"{key}: rows {rowsbad} exceed tol")
    note = "; ".join(bad) if bad else ""
    if bad or errline:
        note += f" (rc=0, stderr: {errline!r})"
    return ("FAIL" if bad else "PASS"), worst, note


def main():
    names = sorted(n for n in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, n, "model.keras")))
    print(f"{'model':30s} {'result':8s} {'max_abs_err':>12s}  note")
    for n in names:
        status, err, note = run(os.path.join(ROOT, n))
        es = "-" if err is None else f"{err:.3e}"
        print(f"{n:30s} {status:8s} {es:>12s}  {note}")


if __name__ == "__main__":
    main()
