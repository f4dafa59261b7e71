#!/usr/bin/env bash
# Host, plugins and tests link one libboot_sdk.so. Cargo unifies features per command, so if building one
# package (`-p X`) turned on other features of a dependency inside the sdk than `--workspace` does, the two
# builds would produce different libboot_sdk.so files and binaries from one would crash against the other
# (docs/architecture.md, guard 2). This checks that every package selection sees the same features for every
# crate in the sdk's dependency closure. Fix a failure by pinning the feature in sdk/Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$(cargo tree -p boot-sdk -e normal -f '{p}' --prefix none | sed 's/ (\*)//' | awk '{print $1}' | sort -u)
features() {
  cargo tree "$@" -e features,normal,dev -f '{p} {f}' --prefix none | grep -E '^[A-Za-z0-9_-]+ v[0-9]' \
    | sed 's/ (\*)//' | sort -u | awk 'NR==FNR{d[$1]=1;next} ($1 in d)' <(echo "$deps") -
}
reference=$(features --workspace)
status=0
for pkg in $(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))'); do
  mine=$(features -p "$pkg")
  [ -z "$mine" ] && continue  # does not link the sdk
  if ! diff <(echo "$reference") <(echo "$mine") >/tmp/boot-features.diff; then
    echo "shared dependency features differ between --workspace and -p $pkg:" >&2
    cat /tmp/boot-features.diff >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "shared dependency features: identical for every package selection"
exit $status
