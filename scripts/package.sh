#!/usr/bin/env bash
# Builds a release archive that works unpacked anywhere:
#   zoo-VERSION-TARGET/bin/zoo
#   zoo-VERSION-TARGET/share/zoo/models/<every catalogue model, weights copied>
#   zoo-VERSION-TARGET/{README.md,LICENSE-MIT,LICENSE-APACHE}
# `bin/zoo` finds `../share/zoo/models` beside itself, so the folder can be
# moved, or its parts copied under any prefix (/usr/local, ~/.local).
#
#   bash scripts/package.sh                  # host target, into dist/
#   TARGET=x86_64-unknown-linux-musl bash scripts/package.sh   # static, if that target is installed
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
target=${TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
out=${OUT:-dist}
name="zoo-$version-$target"

# No path of the build machine in the binary: panic locations of
# dependencies would otherwise name the cargo registry and this folder.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$cargo_home/registry/src= --remap-path-prefix=$cargo_home=cargo --remap-path-prefix=$PWD=zoo --remap-path-prefix=$HOME=~"
cargo build --release --locked --target "$target" --target-dir target/package

stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/share/zoo/models"
cp "target/package/$target/release/zoo" "$stage/bin/"
for m in models/*/; do
  cp -RL "$m" "$stage/share/zoo/models/"   # -L: the weights, not links to them
done
cp README.md LICENSE-MIT LICENSE-APACHE "$stage/"

if strings "$stage/bin/zoo" | grep -q -e "$PWD" -e "$cargo_home" -e "$HOME/"; then
  echo "FAIL: $stage/bin/zoo holds a path of this machine:" >&2
  strings "$stage/bin/zoo" | grep -e "$PWD" -e "$cargo_home" -e "$HOME/" | head -5 >&2
  exit 1
fi
# It runs from a copy away from this checkout, with no other models around.
tmp=$(mktemp -d)
cp -R "$stage" "$tmp/"
(cd "$tmp" && env -u ZOO_MODELS HOME="$tmp" XDG_DATA_HOME="$tmp/data" HF_HUB_OFFLINE=1 \
  "./$name/bin/zoo" run sentiment "a gripping, beautiful film" | grep -q '^positive')
rm -rf "$tmp"

tar -C "$out" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"
