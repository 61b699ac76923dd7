#!/usr/bin/env bash
# The one place that lists and installs what `make test`, `make demo` and `make bench` need on
# Debian bookworm: the Puppet stack (puppet-agent, puppetserver, PuppetDB with PostgreSQL),
# the linters and the command-line tools the tests and scripts call. `make test`, `make demo`,
# `make bench` and `tests/scripts/puppet-stack-up.sh` all call it, so nothing is installed in
# one path and missing in another; `.ci/run` installs nothing itself.
#
# Usage:
#   install-deps.sh            install what is missing (root; apt-get), say in one line what
#   install-deps.sh --check    install nothing; exit 1 listing what is missing
#   install-deps.sh --list     print "command package" pairs, one a line (used by the tests)
#   --dist (after any of them) also the packaging tools `make dist` and `make test` need:
#          cargo-deb and cargo-generate-rpm from crates.io, at the versions pinned below
#          (cargo install --locked: about 4 minutes of compiling on 2 cores, once)
#
# The aarch64 task binary is compiled by Debian's rustc-web (with libstd-rust-web-dev:arm64;
# dpkg gets the arm64 architecture for it) and linked by gcc-aarch64-linux-gnu; the Makefile
# calls it by its full path. It installs /usr/bin/rustc, behind rustup's ~/.cargo/bin on PATH:
# the script checks that `cargo` and `rustc` on PATH are the same before and after.
#
# No service may start on install (the tests run their own puppetserver and PuppetDB, and a
# daemon agent would share /etc/puppet with them): a policy-rc.d that refuses is put in place
# for the install, unless the machine already has one.
set -euo pipefail

# Every command the build, the tests, the benchmarks and the scripts run, and the Debian
# package that provides it. A test (tests/e2e/install.rs) fails when a script or a test calls
# a program that is not in this list.
TOOLS=(
  "puppet puppet-agent"
  "puppetserver puppetserver"
  "java default-jre-headless"
  "puppetdb puppetdb"
  "psql postgresql-client-15"
  "pg_ctlcluster postgresql-common"
  "metadata-json-lint metadata-json-lint"
  "xmllint libxml2-utils"
  "hyperfine hyperfine"
  "jq jq"
  "python3 python3"
  "ruby ruby"
  "curl curl"
  "file file"
  "git git"
  "make make"
  "gzip gzip"
  "tar tar"
  "setpriv util-linux"
  "setsid util-linux"
  "script bsdutils"
  "ps procps"
  "free procps"
  "kill procps"
  "apt-get apt"
  "apt-cache apt"
  "pkill procps"
  "dpkg-deb dpkg"
  "apt-ftparchive apt-utils"
  "openssl openssl"
  "/usr/bin/time time"
  "sshd openssh-server"
  "ssh openssh-client"
  "ssh-keygen openssh-client"
  "ssh-keyscan openssh-client"
  "sudo sudo"
  "unshare util-linux"
  "nsenter util-linux"
  "mountpoint util-linux"
  "/usr/bin/rustc rustc-web"
  "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu"
  "qemu-aarch64-static qemu-user-static"
  "lintian lintian"
  "rpm rpm"
  "systemd-analyze systemd"
  "systemd-sysusers systemd"
  "systemctl systemd"
  "help2man help2man"
  "man man-db"
  "zsh zsh"
  "fish fish"
  "perf linux-perf"
)
# Packages needed for what they hold, not for a command: the PostgreSQL server PuppetDB uses,
# the puppetserver's PuppetDB terminus, the CA bundle curl and apt use, python3's venv module
# (the SSH benchmark installs ansible-core from PyPI into a venv).
EXTRA_PACKAGES=(postgresql postgresql-15 puppet-terminus-puppetdb ca-certificates python3-venv)

# The aarch64 task's toolchain (beside the TOOLS above), installed without Recommends: those
# would add Debian's cargo (/usr/bin/cargo) and an LLVM the build does not use.
NO_RECOMMENDS=(rustc-web libstd-rust-web-dev:arm64 libc6-dev-arm64-cross)
# The shells' completion loaders the package test uses (bash's lazy loader).
EXTRA_PACKAGES+=(bash-completion)
# Cargo subcommands for `make dist` (--dist): "name version".
CARGO_TOOLS=("cargo-deb 3.8.0" "cargo-generate-rpm 0.21.1")

dist=0
args=()
for a in "$@"; do
  if [ "$a" = --dist ]; then dist=1; else args+=("$a"); fi
done
mode=${args[0]:-install}
case $mode in
  install|--install) mode=install ;;
  --check) mode=check ;;
  --list) for t in "${TOOLS[@]}"; do echo "$t"; done; exit 0 ;;
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps.sh: unknown argument '$mode' (use --check, --list or no argument; --dist)" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
has_command() {
  case $1 in /*) [ -x "$1" ] ;; *) command -v "$1" >/dev/null 2>&1 ;; esac
}

packages=()
for t in "${TOOLS[@]}"; do packages+=("${t#* }"); done
packages+=("${EXTRA_PACKAGES[@]}" "${NO_RECOMMENDS[@]}")
# shellcheck disable=SC2207 # package names have no spaces
packages=($(printf '%s\n' "${packages[@]}" | sort -u))

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_commands=()
for t in "${TOOLS[@]}"; do
  cmd=${t%% *}
  # pg_ctlcluster and the puppetdb wrapper live outside PATH for non-root users.
  has_command "$cmd" || [ -x "/usr/bin/$cmd" ] || [ -x "/usr/sbin/$cmd" ] || missing_commands+=("$cmd")
done

cargo_tool_version() { "$1" --version 2>/dev/null | awk '{print $2}'; }
missing_cargo=()
if [ "$dist" = 1 ]; then
  for t in "${CARGO_TOOLS[@]}"; do
    name=${t% *} version=${t#* }
    [ "$(cargo_tool_version "$name")" = "$version" ] || missing_cargo+=("$name@$version")
  done
fi

if [ "$mode" = check ]; then
  if [ ${#missing[@]} -eq 0 ] && [ ${#missing_commands[@]} -eq 0 ] && [ ${#missing_cargo[@]} -eq 0 ]; then
    echo "[deps] all ${#packages[@]} packages installed"
    exit 0
  fi
  [ ${#missing[@]} -eq 0 ] || echo "[deps] missing packages: ${missing[*]}" >&2
  [ ${#missing_commands[@]} -eq 0 ] || echo "[deps] missing commands: ${missing_commands[*]}" >&2
  [ ${#missing_cargo[@]} -eq 0 ] || echo "[deps] missing cargo tools: ${missing_cargo[*]}" >&2
  echo "[deps] run tests/scripts/install-deps.sh as root to install them" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#packages[@]} packages installed"
else
  if [ "$(id -u)" != 0 ]; then
    echo "[deps] missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "[deps] installing ${#missing[@]} Debian packages: ${missing[*]}"
  t0=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  # Debian's rustc-web must not become the cargo or rustc the build finds on PATH.
  before="$(command -v cargo rustc 2>/dev/null || true) $(rustc -V 2>/dev/null || true)"
  case " ${missing[*]} " in
    *:arm64\ *) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
  esac
  plain=() norec=()
  for p in "${missing[@]}"; do
    case " ${NO_RECOMMENDS[*]} " in *" $p "*) norec+=("$p") ;; *) plain+=("$p") ;; esac
  done
  apt-get update -qq
  [ ${#plain[@]} -eq 0 ] || apt-get install -y -qq "${plain[@]}" >/dev/null
  [ ${#norec[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${norec[@]}" >/dev/null
  after="$(command -v cargo rustc 2>/dev/null || true) $(rustc -V 2>/dev/null || true)"
  if [ "$before" != "$after" ]; then
    echo "[deps] error: cargo/rustc on PATH changed with the install: before: $before; after: $after" >&2
    exit 1
  fi
  echo "[deps] installed in $(( $(date +%s) - t0 ))s"
fi

# The packaging tools, pinned, from crates.io (cargo install --locked compiles them).
for t in "${missing_cargo[@]}"; do
  t0=$(date +%s)
  echo "[deps] cargo install --locked $t (compiles it: a few minutes on 2 cores)"
  cargo install --quiet --locked "$t"
  echo "[deps] $t installed in $(( $(date +%s) - t0 ))s"
done

# What was installed must really provide every command (a package renamed upstream, say).
still=()
for t in "${TOOLS[@]}"; do
  cmd=${t%% *}
  has_command "$cmd" || [ -x "/usr/bin/$cmd" ] || [ -x "/usr/sbin/$cmd" ] || still+=("$cmd (${t#* })")
done
if [ ${#still[@]} -gt 0 ]; then
  echo "[deps] error: still missing after install: ${still[*]}" >&2
  exit 1
fi
