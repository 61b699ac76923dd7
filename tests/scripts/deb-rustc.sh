#!/usr/bin/env bash
# Debian's rustc-web: the compiler of the aarch64 task binary (Makefile `task`, `make test`'s
# aarch64 suites), called by its full path through RUSTC, never found on PATH.
#
# Usage: deb-rustc.sh check RUSTC TARGET
#   exits 0 when RUSTC is there, is at least the workspace's rust-version, has TARGET's std
#   (libstd-rust-web-dev:<arch>) and the cross linker is installed; else says what to install.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

[ "${1:-}" = check ] || { echo "usage: deb-rustc.sh check RUSTC TARGET" >&2; exit 2; }
rustc=${2:?usage: deb-rustc.sh check RUSTC TARGET}
target=${3:?usage: deb-rustc.sh check RUSTC TARGET}
fix="run tests/scripts/install-deps.sh as root (rustc-web, libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu)"

[ -x "$rustc" ] || { echo "error: $rustc (Debian's rustc-web) is missing: $fix" >&2; exit 1; }
need=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)
have=$("$rustc" -V | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
  echo "error: $rustc is rustc $have; the workspace needs $need or later (rustc-web from bookworm-security): $fix" >&2
  exit 1
fi
libdir=$("$rustc" --target "$target" --print target-libdir)
std=("$libdir"/libstd-*.rlib)
[ -e "${std[0]}" ] || { echo "error: $rustc has no std for $target (no $libdir/libstd-*.rlib): $fix" >&2; exit 1; }
linker=${target%%-unknown-*}-linux-gnu-gcc
command -v "$linker" >/dev/null || { echo "error: $linker (the cross linker) is missing: $fix" >&2; exit 1; }
