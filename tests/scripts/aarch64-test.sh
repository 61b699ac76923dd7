#!/usr/bin/env bash
# psick-task's unit and integration suites against the aarch64 build, under qemu-user on this
# x86_64 machine (`make test` runs it after the main suites; it needs `make deps task`).
#
#  - unit: the library's tests (and those of the parsers it is built from) compiled for
#    aarch64-unknown-linux-gnu by Debian's rustc-web, statically, and run by cargo through
#    qemu-aarch64-static (CARGO_TARGET_..._RUNNER);
#  - integration: the suite, built natively, runs the staged files/aarch64/psick-task through
#    qemu-aarch64-static (PSICK_TASK_BIN, PSICK_TASK_RUNNER); puppet and the other programs
#    the task starts run natively. The memory limits under qemu count qemu's own memory
#    (see crates/psick-task/tests/integration/limits.rs).
# qemu is called explicitly: nothing is registered with binfmt_misc.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
qemu=/usr/bin/qemu-aarch64-static
deb_rustc=${DEB_RUSTC:-/usr/bin/rustc}
target=aarch64-unknown-linux-gnu
bin=$root/files/aarch64/psick-task
target_dir=${CARGO_TARGET_DIR:-target}/debian-rustc

[ -x "$qemu" ] || { echo "aarch64-test.sh: $qemu is missing: run tests/scripts/install-deps.sh" >&2; exit 1; }
[ -x "$bin" ] || { echo "aarch64-test.sh: $bin is missing: run \`make task\`" >&2; exit 1; }
"$here/deb-rustc.sh" check "$deb_rustc" "$target"

rc=0
t0=$(date +%s)
echo "[aarch64] unit tests, built by $deb_rustc for $target, run under $qemu"
RUSTC=$deb_rustc \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=$qemu \
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo test --locked -p psick-task -p puppet-report -p process-tree --lib \
    --target "$target" --target-dir "$target_dir" || rc=$?
echo "[aarch64] unit tests done in $(( $(date +%s) - t0 ))s (rc=$rc)"

t1=$(date +%s)
echo "[aarch64] integration suite against $bin under $qemu"
export PSICK_TASK_BIN=$bin PSICK_TASK_RUNNER=$qemu
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked -p psick-task --test integration --no-fail-fast || rc=$?
else
  cargo test --locked -p psick-task --test integration --no-fail-fast || rc=$?
fi
echo "[aarch64] integration suite done in $(( $(date +%s) - t1 ))s (rc=$rc)"
exit "$rc"
