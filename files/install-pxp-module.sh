#!/bin/sh
# Installs Kick's binary (this module's files/<arch>/psick-task, the node's
# architecture: x86_64 or aarch64) as pxp-agent's
# pxp-module-puppet, keeping Puppet's own module to go back to; `restore`
# puts Puppet's module back. Both can be run again and again: an upgrade of
# Kick runs `install` a second time, and Kick's binary is never saved as
# Puppet's module.
#
# usage: sh install-pxp-module.sh install|restore
# Then restart pxp-agent (it reads its modules at start).
#
# Paths (defaults: puppet-agent's layout):
#   PXP_MODULES_DIR   pxp-agent's modules  (/opt/puppetlabs/pxp-agent/modules)
#   PXP_SAVED_MODULE  Puppet's module, kept outside modules/ where pxp-agent
#                     would load it as a second module
#                     ($PXP_MODULES_DIR/../pxp-module-puppet.rb.orig)
#   KICK_TASK         Kick's binary        (this module's files/<arch>/psick-task)
set -eu

# The start of Kick's module description (`pxp-module-puppet metadata`), in
# every version of the binary: how Kick's module is told from Puppet's.
marker='PXP Puppet module (psick: one static binary'

here=$(cd "$(dirname "$0")" && pwd)
modules=${PXP_MODULES_DIR:-/opt/puppetlabs/pxp-agent/modules}
modules=${modules%/}
saved=${PXP_SAVED_MODULE:-$(dirname "$modules")/pxp-module-puppet.rb.orig}
case $(uname -m) in
x86_64 | amd64) arch=x86_64 ;;
aarch64 | arm64) arch=aarch64 ;;
*) arch=$(uname -m) ;;
esac
task=${KICK_TASK:-$here/$arch/psick-task}
module=$modules/pxp-module-puppet
reinstall="reinstall the puppet-agent package (apt-get install --reinstall puppet-agent, dnf reinstall puppet-agent)"

say() { printf 'install-pxp-module: %s\n' "$*"; }
die() {
	say "error: $*" >&2
	exit 1
}
is_kick() { [ -f "$1" ] && LC_ALL=C grep -q -F -e "$marker" "$1"; }
is_puppets() { [ -f "$1" ] && ! is_kick "$1"; }

# copy FROM TO [MODE]: writes a temporary file beside TO, then renames it
# over TO. The rename is atomic: a running pxp-module-puppet keeps its file
# (no "Text file busy"), pxp-agent sees the old file or the new one, and
# the temporary name has an extension, which pxp-agent never loads. With
# MODE the copy is a new file of the user running this (root) with that
# mode; without, it keeps FROM's owner, mode and times (Puppet's module).
copy() {
	tmp=$2.kick-tmp.$$
	if [ -n "${3-}" ]; then
		cp "$1" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$2" && return 0
	else
		cp -p "$1" "$tmp" && mv -f "$tmp" "$2" && return 0
	fi
	rm -f "$tmp"
	die "could not write $2"
}

install_kick() {
	[ -f "$task" ] || die "Kick's binary is not at $task (set KICK_TASK)"
	is_kick "$task" || die "$task is not Kick's psick-task binary"
	[ -d "$modules" ] || die "$modules is not a directory: is pxp-agent installed? (set PXP_MODULES_DIR)"
	if is_puppets "$module"; then
		# Puppet's module: the first install, or a puppet-agent upgrade put
		# a newer one back; the one to go back to is the current one.
		if [ -f "$saved" ] && cmp -s "$module" "$saved"; then
			say "Puppet's module is already saved as $saved"
		else
			copy "$module" "$saved"
			say "saved Puppet's module as $saved"
		fi
	elif is_puppets "$saved"; then
		say "Puppet's module is kept at $saved"
	elif [ -f "$saved" ]; then
		say "warning: $saved is Kick's binary, not Puppet's module; to go back, $reinstall" >&2
	else
		say "warning: no copy of Puppet's module to keep; to go back, $reinstall" >&2
	fi
	copy "$task" "$module" 0755
	say "installed $task as $module; restart pxp-agent"
}

restore_puppets() {
	if is_puppets "$module"; then
		say "$module is Puppet's module already"
	elif is_puppets "$saved"; then
		copy "$saved" "$module"
		say "restored Puppet's module from $saved; restart pxp-agent"
	else
		die "no saved copy of Puppet's module at $saved: $reinstall, then restart pxp-agent"
	fi
}

case ${1-} in
install) install_kick ;;
restore) restore_puppets ;;
*)
	echo "usage: sh $0 install|restore" >&2
	exit 2
	;;
esac
