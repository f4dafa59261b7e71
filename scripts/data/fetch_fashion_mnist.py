#!/usr/bin/env python3
"""Fetch Fashion-MNIST from Debian's `dataset-fashion-mnist` package and write it as .npz.

    python scripts/data/fetch_fashion_mnist.py [--out data/fashion-mnist] [--deb path/to/the.deb]

Downloads the pinned package with `apt-get download` (or takes a .deb already fetched with --deb), checks its
sha256, reads the four IDX files inside, and writes `<out>/fashion-mnist-train.npz` (60,000) and
`<out>/fashion-mnist-test.npz` (10,000), each with `images` uint8 [N, 28, 28] and `labels` uint8 [N]. Needs
Python 3 with numpy; no dpkg (the .deb is read as an `ar` archive). The data is Zalando's, MIT (Expat)
licensed; it is fetched, never committed (`data/` is git-ignored).
"""

import argparse
import gzip
import hashlib
import io
import lzma
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "dataset-fashion-mnist"
VERSION = "0.0~git20200523.55506a9-1"
SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
IDX_DIR = "usr/share/datasets/fashion-mnist"
SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)}


def download(dest: Path) -> Path:
    """`apt-get download` of the pinned version into `dest`; returns the .deb's path."""
    try:
        subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=dest, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"apt-get download {PACKAGE}={VERSION} failed ({e}); fetch the .deb by hand and pass --deb")
    debs = list(dest.glob(f"{PACKAGE}_*.deb"))
    if len(debs) != 1:
        sys.exit(f"apt-get download left {len(debs)} .deb files in {dest}")
    return debs[0]


def ar_members(data: bytes) -> dict:
    """The members of an `ar` archive (a .deb) by name."""
    if not data.startswith(b"!<arch>\n"):
        sys.exit("not a .deb (no ar header)")
    out, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        out[name] = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    return out


def idx(raw: bytes, dims: int) -> np.ndarray:
    """An unsigned-byte IDX array (magic 0x00000800 + dims)."""
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + dims:
        sys.exit(f"bad IDX magic {magic:#x} (expected {0x800 + dims:#x})")
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    return body.reshape(shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/fashion-mnist"))
    ap.add_argument("--deb", type=Path, help="an already downloaded .deb (its sha256 is still checked)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        deb = args.deb or download(Path(tmp))
        data = deb.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"{deb}: sha256 {digest}, expected {SHA256} ({PACKAGE} {VERSION})")
    members = ar_members(data)
    if "data.tar.xz" not in members:
        sys.exit(f"{deb}: no data.tar.xz (members: {sorted(members)})")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(lzma.decompress(members["data.tar.xz"]))) as tar:
        for m in tar.getmembers():
            name = m.name.lstrip("./")
            if name.startswith(IDX_DIR + "/") and name.endswith(".gz"):
                files[name.rsplit("/", 1)[1]] = gzip.decompress(tar.extractfile(m).read())

    args.out.mkdir(parents=True, exist_ok=True)
    for split, (images_name, labels_name, count) in SPLITS.items():
        images, labels = idx(files[images_name], 3), idx(files[labels_name], 1)
        if images.shape != (count, 28, 28) or labels.shape != (count,) or labels.max() > 9:
            sys.exit(f"{split}: unexpected shapes {images.shape} {labels.shape}")
        path = args.out / f"fashion-mnist-{split}.npz"
        # Uncompressed: boot-host fd-stats reads .npz through candle's zip reader, which has no deflate.
        np.savez(path, images=images, labels=labels)
        print(f"{path}: images {images.shape} uint8, labels {labels.shape} (classes {np.bincount(labels).tolist()})")


if __name__ == "__main__":
    main()
