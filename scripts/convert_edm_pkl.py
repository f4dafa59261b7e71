#!/usr/bin/env python3
"""Convert an NVIDIA EDM network pickle into the files boot's `edm` teacher loads.

NVIDIA's EDM checkpoints (`edm-cifar10-32x32-uncond-vp.pkl`, training snapshots `network-snapshot-*.pkl`)
are pickles of whole Python objects: a dict whose `'ema'` entry is the network wrapper (`EDMPrecond`,
`VPPrecond`, `VEPrecond`, ...), an instance of a `torch_utils.persistence` class whose source code is
embedded in the pickle. Unpickling needs the EDM repository (https://github.com/NVlabs/edm) on
PYTHONPATH for its `dnnlib` and `torch_utils` packages, plus torch.

This script writes two files:

  OUT.safetensors  the object's `state_dict()` unchanged: float tensors under the original keys
                   (`model.map_layer0.weight`, `model.enc.32x32_conv.weight`, ...), buffers included
                   (`*.resample_filter`, `model.map_noise.freqs`).
  OUT.json         {"class_name": "VPPrecond", "constructor_kwargs": {...}, "source": {...}}: the class
                   name and the exact arguments its constructor got (`init_args` / `init_kwargs`, which
                   persistence records); float('inf') is written as the string "inf" (strict JSON).

Usage:

  PYTHONPATH=/path/to/edm python scripts/convert_edm_pkl.py edm-cifar10-32x32-uncond-vp.pkl \\
      teachers/edm-cifar10-uncond-vp            # -> teachers/edm-cifar10-uncond-vp.{safetensors,json}
  options: --key ema (the dict entry holding the network; default 'ema', ignored if the pickle is the
           network itself)

Then, in the run config (paths relative to the config file):

  [teacher]
  kind = "edm"
  checkpoint = "teachers/edm-cifar10-uncond-vp.safetensors"   # the .json beside it is found by name

Requirements: python >= 3.8, torch, safetensors (`pip install torch safetensors`), the EDM repo on
PYTHONPATH. Unpickling runs code from the pickle: only convert files from a source you trust.

Status: no real NVIDIA pickle was reachable where this was written. What was checked: a pickle made by
(a transcription of) EDM's `torch_utils.persistence` from a persistent `EDMPrecond` stand-in that carries
a fixture's constructor arguments (two of them positional) and state dict was converted with this script;
the Rust teacher loaded the output strictly and reproduced the fixture's official `D_f32` (max abs 9e-7).
`--self-test` checks the argument conversion alone (no torch needed).
"""

import argparse
import inspect
import json
import math
import os
import pickle
import sys

SUPPORTED = {"EDMPrecond", "VPPrecond", "VEPrecond", "SongUNet", "DhariwalUNet"}


def to_jsonable(v):
    """Plain JSON values from constructor arguments (EasyDict, tuples, numpy scalars, inf)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            raise ValueError("NaN constructor argument")
        return float(v)
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        return to_jsonable(v.item())
    if hasattr(v, "tolist") and callable(v.tolist):  # numpy arrays
        return to_jsonable(v.tolist())
    raise TypeError(f"cannot write constructor argument of type {type(v).__name__}: {v!r}")


def original_class(obj):
    """The user class behind a torch_utils.persistence decorator (its direct base), else the type."""
    cls = type(obj)
    if hasattr(obj, "_orig_class_name") and cls.__bases__:
        return cls.__bases__[0]
    return cls


def class_name(obj):
    return getattr(obj, "_orig_class_name", None) or type(obj).__name__


def constructor_kwargs(obj):
    """init_args mapped to parameter names, then init_kwargs (what persistence recorded)."""
    args = tuple(getattr(obj, "init_args", ()) or ())
    kwargs = dict(getattr(obj, "init_kwargs", {}) or {})
    if not hasattr(obj, "init_kwargs"):
        raise SystemExit(f"{class_name(obj)} has no recorded constructor arguments (not a persistent EDM object?)")
    if args:
        params = [p for p in inspect.signature(original_class(obj).__init__).parameters.values()][1:]
        for p, a in zip(params, args):
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise SystemExit(f"cannot name positional argument {a!r} of {class_name(obj)}")
            kwargs[p.name] = a
    return to_jsonable(kwargs)


def convert(pkl_path, out, key):
    import torch  # noqa: F401  (needed by the pickle)
    from safetensors.torch import save_file

    with open(pkl_path, "rb") as f:
        data = pickle.load(f)
    net = data[key] if isinstance(data, dict) else data
    name = class_name(net)
    if name not in SUPPORTED:
        print(f"warning: class {name} is not one boot's edm teacher supports ({', '.join(sorted(SUPPORTED))})", file=sys.stderr)
    kwargs = constructor_kwargs(net)
    state = {}
    for k, v in net.state_dict().items():
        t = v.detach().cpu()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.to(torch.float32)
        state[k] = t.contiguous().clone()  # clone: safetensors refuses shared storage
    meta = {"source": os.path.basename(pkl_path), "class_name": name, "torch_version": torch.__version__}
    save_file(state, out + ".safetensors", metadata=meta)
    desc = {
        "class_name": name,
        "constructor_kwargs": kwargs,
        "source": {"pickle": os.path.basename(pkl_path), "key": key if isinstance(data, dict) else None},
        "state_dict_keys": list(state.keys()),
    }
    with open(out + ".json", "w") as f:
        json.dump(desc, f, indent=1, allow_nan=False)
    n = sum(t.numel() for t in state.values())
    print(f"{out}.safetensors: {len(state)} tensors, {n} values; {out}.json: {name} {json.dumps(kwargs)}")


def self_test():
    class EasyDict(dict):
        pass

    class Fake:
        def __init__(self, img_resolution, img_channels, label_dim=0, **model_kwargs):
            pass

    class Persistent(Fake):
        _orig_class_name = "EDMPrecond"

    obj = Persistent.__new__(Persistent)
    obj.init_args = (32, 3)
    obj.init_kwargs = EasyDict(label_dim=0, sigma_max=float("inf"), channel_mult=(2, 2, 2), model_type="SongUNet")
    got = constructor_kwargs(obj)
    want = {"img_resolution": 32, "img_channels": 3, "label_dim": 0, "sigma_max": "inf", "channel_mult": [2, 2, 2], "model_type": "SongUNet"}
    assert got == want, got
    assert class_name(obj) == "EDMPrecond"
    json.dumps(got, allow_nan=False)
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pickle", nargs="?", help="NVIDIA EDM .pkl")
    ap.add_argument("out", nargs="?", help="output path without extension")
    ap.add_argument("--key", default="ema", help="dict entry holding the network (default: ema)")
    ap.add_argument("--self-test", action="store_true", help="check the argument conversion only")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not a.pickle or not a.out:
        ap.error("pickle and out are required")
    out = a.out[: -len(".safetensors")] if a.out.endswith(".safetensors") else a.out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    convert(a.pickle, out, a.key)


if __name__ == "__main__":
    main()
