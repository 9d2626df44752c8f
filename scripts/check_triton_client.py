#!/usr/bin/env python3
"""Drive a running `zoo serve` with Triton's own Python client, default settings.

  python scripts/check_triton_client.py --url 127.0.0.1:8080 [--grpc-url 127.0.0.1:8001]

Needs `pip install "tritonclient[http]"` (and `[grpc]` for --grpc-url). tests/serve.rs
runs it against a fresh server when the package is importable. Every call uses the
client's defaults (binary tensor data on, no output list), as a Triton user would.
Prints one JSON line per check; exits 1 at the first mismatch.
"""
import argparse
import json
import sys

import numpy as np


def check(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": detail}), flush=True)
    if not ok:
        sys.exit(1)


def run(client, module, grpc):
    check("server live", client.is_server_live())
    check("server ready", client.is_server_ready())
    meta = client.get_server_metadata(as_json=True) if grpc else client.get_server_metadata()
    check("server metadata", meta.get("name") == "zoo" and "binary_tensor_data" in meta.get("extensions", []),
          meta)
    index = client.get_model_repository_index(as_json=True) if grpc else client.get_model_repository_index()
    models = index.get("models", index) if isinstance(index, dict) else index
    names = [m["name"] for m in models]
    check("repository index", len(names) > 0, names)
    for name in names:
        check(f"{name} ready", client.is_model_ready(name))
        meta = client.get_model_metadata(name, as_json=True) if grpc else client.get_model_metadata(name)
        check(f"{name} metadata", meta["name"] == name and meta["inputs"][0]["name"] == "text", meta)
        cfg = client.get_model_config(name, as_json=True) if grpc else client.get_model_config(name)
        cfg = cfg.get("config", cfg)
        check(f"{name} config", cfg["name"] == name and cfg["input"][0]["name"] == "text", cfg)
        texts = ["I loved this film, it was wonderful.", "Angela Merkel visited Paris.", ""]
        data = np.array([[t.encode()] for t in texts], dtype=np.object_)
        inp = module.InferInput("text", list(data.shape), "BYTES")
        inp.set_data_from_numpy(data)  # binary_data=True, the default
        res = client.infer(name, [inp])  # no outputs: every output, binary by default
        outputs = [o["name"] for o in meta["outputs"]]
        for out in outputs:
            arr = res.as_numpy(out)
            check(f"{name} infer {out}", arr is not None and arr.shape[0] == len(texts),
                  None if arr is None else list(arr.shape))
        first = res.as_numpy(outputs[0])
        check(f"{name} first output decodes", isinstance(first[0], (bytes, np.bytes_, np.floating, float)),
              repr(first[:2]))
        print(json.dumps({"model": name, outputs[0]: [x.decode() if isinstance(x, bytes) else float(x)
                                                       for x in first.reshape(-1)]}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="HOST:PORT of zoo serve's HTTP endpoint")
    ap.add_argument("--grpc-url", default=None, help="HOST:PORT of its gRPC endpoint")
    args = ap.parse_args()
    import tritonclient.http as http
    run(http.InferenceServerClient(url=args.url), http, grpc=False)
    if args.grpc_url:
        import tritonclient.grpc as grpc
        run(grpc.InferenceServerClient(url=args.grpc_url), grpc, grpc=True)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
