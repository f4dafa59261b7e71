#!/usr/bin/env python3
"""Converts a PyTorch state dict saved in the legacy (pre-1.6, non-zip) `torch.save` format to safetensors,
with the Python standard library only (no torch, no numpy).

    python3 scripts/fd/pth_to_safetensors.py IN.pth OUT.safetensors

Every floating-point tensor is written unchanged (same dtype, same bytes, keys sorted); integer tensors
(BatchNorm's `num_batches_tracked` counters, unused in inference) are dropped. Strided tensors are
rewritten in row-major order (the EfficientNet-Lite0 file stores some depthwise weights channels-last).
The output is byte-deterministic, so its sha256 can be pinned.

The legacy format is: pickle(magic), pickle(protocol), pickle(sys_info), pickle(state dict whose tensors
refer to storages through persistent ids), pickle(list of storage keys), then per storage an int64 element
count and its raw little-endian bytes.
"""
import array
import json
import pickle
import struct
import sys
from collections import OrderedDict

MAGIC = 0x1950A86A20F9469CFC6C
# storage type -> (safetensors dtype, bytes per element, keep)
STORAGES = {
    "FloatStorage": ("F32", 4, True),
    "DoubleStorage": ("F64", 8, True),
    "HalfStorage": ("F16", 2, True),
    "BFloat16Storage": ("BF16", 2, True),
    "LongStorage": ("I64", 8, False),
    "IntStorage": ("I32", 4, False),
}


class StorageType:
    def __init__(self, name):
        self.name = name


class TensorRef:
    """A tensor as the pickle describes it: a view into a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor_v2(storage, offset, size, stride, *_):
    return TensorRef(storage, offset, size, stride)


class Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"unsupported global {module}.{name}")

    def persistent_load(self, pid):
        kind, stype, key, _location, numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self.storages.setdefault(key, {"type": stype.name, "numel": numel, "data": None})


def read_legacy(path):
    storages = {}
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            sys.exit(f"{path}: not a legacy torch.save file (zip-format files are read by candle directly)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info
        state = Unpickler(f, storages).load()
        for key in pickle.load(f):
            s = storages[key]
            _, itemsize, _ = STORAGES[s["type"]]
            (numel,) = struct.unpack("<q", f.read(8))
            s["data"] = f.read(numel * itemsize)
    return state


def contiguous_strides(size):
    strides, acc = [], 1
    for n in reversed(size):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


def gather(data, itemsize, offset, size, stride):
    """The bytes of a strided view, in row-major order."""
    if not size or stride == contiguous_strides(size):
        numel = 1
        for n in size:
            numel *= n
        return data[offset * itemsize:(offset + numel) * itemsize]
    offsets = [offset]
    for n, s in zip(size, stride):
        offsets = [o + i * s for o in offsets for i in range(n)]
    code = {2: "H", 4: "I", 8: "Q"}[itemsize]
    words = memoryview(data).cast(code)
    return array.array(code, (words[o] for o in offsets)).tobytes()


def main(src, dst):
    state = read_legacy(src)
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        t = state[name]
        dtype, itemsize, keep = STORAGES[t.storage["type"]]
        if not keep:
            continue
        data = gather(t.storage["data"], itemsize, t.offset, t.size, t.stride)
        header[name] = {"dtype": dtype, "shape": list(t.size), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    print(f"wrote {dst}: {len(header)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
