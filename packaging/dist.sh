#!/usr/bin/env bash
# `make dist`: .deb (cargo-deb) and .rpm (cargo-generate-rpm) packages of kick and
# kick-orchestrator into pkg/, beside the module tarball `make module` puts there.
#
# The binaries are release builds linked statically (glibc's crt-static, x86_64): they need
# no library of the machine, so one .deb serves Debian 11 to 13 and Ubuntu 20.04 to 24.04 and
# one .rpm EL 8 to 10. kick's man pages and completions come from the built binary
# (`kick man --dir`, `kick completions <shell>`), kick-orchestrator's man page from its --help
# (help2man). Everything is stamped with the last commit's time (SOURCE_DATE_EPOCH).
#
# Settings: [package.metadata.deb] and [package.metadata.generate-rpm] of crates/kick and
# crates/orchestrator; the service's files in packaging/kick-orchestrator/.
# Env: DEB_MAINTAINER  the .debs' Maintainer field (default: Cargo.toml's)
#      CARGO           cargo to run (default cargo)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
cargo=${CARGO:-cargo}
target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-target}
bins=$target_dir/$target/release
# Fixed: the packages' metadata names these paths.
stage=target/dist
out=pkg
say() { printf '[dist] %s\n' "$*"; }
die() { printf '[dist] error: %s\n' "$*" >&2; exit 1; }

for tool in cargo-deb cargo-generate-rpm help2man gzip file; do
  command -v "$tool" >/dev/null || die "$tool is missing: run tests/scripts/install-deps.sh --dist"
done
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

t0=$(date +%s)
say "static release build of kick and kick-orchestrator ($target)"
RUSTFLAGS="-C target-feature=+crt-static" "$cargo" build --locked --release --target "$target" \
  -p kick --bin kick -p kick-orchestrator --bin kick-orchestrator
for b in kick kick-orchestrator; do
  file -L "$bins/$b" | grep -Eq 'statically linked|static-pie linked' \
    || die "$bins/$b is not statically linked: $(file -L "$bins/$b")"
done
say "built in $(( $(date +%s) - t0 ))s"

# One version everywhere: the workspace's, the module's and what the binaries say.
version=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n1)
module_version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' metadata.json | head -n1)
[ "$module_version" = "$version" ] || die "metadata.json says $module_version, Cargo.toml $version"
for b in kick kick-orchestrator; do
  said=$("$bins/$b" --version)
  [ "$said" = "$b $version" ] || die "$b --version says '$said', not '$b $version'"
done

rm -rf "$stage"
mkdir -p "$stage/kick/man" "$stage/kick/completions" \
  "$stage/kick-orchestrator/debian" "$stage/kick-orchestrator/rpm" "$out"
"$bins/kick" man --dir "$stage/kick/man"
gzip -9n "$stage"/kick/man/*.1
for shell in bash zsh fish; do
  case $shell in bash) f=kick.bash ;; zsh) f=_kick ;; fish) f=kick.fish ;; esac
  "$bins/kick" completions "$shell" > "$stage/kick/completions/$f"
done
help2man --no-info --section 1 \
  --name "Orchestrator API v1 service that runs Puppet tasks on nodes over SSH" \
  "$bins/kick-orchestrator" | gzip -9n > "$stage/kick-orchestrator/kick-orchestrator.1.gz"
# The .debs' changelog.Debian (one entry: this version, stamped with the commit's time).
for p in kick kick-orchestrator; do
  printf '%s (%s-1) unstable; urgency=medium\n\n  * Kick %s, built by make dist.\n\n -- %s  %s\n' \
    "$p" "$version" "$version" "${DEB_MAINTAINER:-Kick maintainers <kick-psick@users.noreply.github.com>}" \
    "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" > "$stage/$p/changelog"
done
# The install scripts: one body (first-start.sh) in the .deb's postinst and the .rpm's %post.
pk=packaging/kick-orchestrator
assemble() { sed -e "/@FIRST_START@/{r $pk/first-start.sh" -e 'd;}' "$1" > "$2"; }
assemble "$pk/debian/postinst.in" "$stage/kick-orchestrator/debian/postinst"
install -m 0755 "$pk/debian/postrm" "$stage/kick-orchestrator/debian/postrm"
chmod 0755 "$stage/kick-orchestrator/debian/postinst"
assemble "$pk/rpm/post.in" "$stage/kick-orchestrator/rpm/post"
for s in "$stage/kick-orchestrator/debian/postinst" "$stage/kick-orchestrator/rpm/post"; do
  sh -n "$s" || die "$s: syntax error"
done

maint=()
[ -z "${DEB_MAINTAINER:-}" ] || maint=(--maintainer "$DEB_MAINTAINER")
for p in kick kick-orchestrator; do
  "$cargo" deb --quiet --no-build --target "$target" -p "$p" "${maint[@]}" -o "$out/"
done
rpm_of() { case $1 in kick) echo crates/kick ;; kick-orchestrator) echo crates/orchestrator ;; esac; }
for p in kick kick-orchestrator; do
  "$cargo" generate-rpm -p "$(rpm_of "$p")" --target "$target" --target-dir "$target_dir" \
    --payload-compress xz --source-date "$SOURCE_DATE_EPOCH" -o "$out/"
done
say "packages in $out/ ($(( $(date +%s) - t0 ))s in all):"
ls -l "$out"/kick_"$version"-*.deb "$out"/kick-orchestrator_"$version"-*.deb \
  "$out"/kick-"$version"-*.rpm "$out"/kick-orchestrator-"$version"-*.rpm
