# What kick-orchestrator.service needs before its first start, for the .deb's postinst
# (configure) and the .rpm's %post alike; every step keeps what is already there, so an
# upgrade changes nothing.
# The system user, from the packaged sysusers snippet.
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/kick-orchestrator.conf
elif ! getent passwd kick-orchestrator >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /var/lib/kick-orchestrator --no-create-home \
		--shell /usr/sbin/nologin --comment "Kick orchestrator" kick-orchestrator
fi
# The state directory (systemd's StateDirectory= would make it too; this one lets the
# binary be started by hand with the packaged settings).
if [ ! -d /var/lib/kick-orchestrator ]; then
	mkdir -m 0700 /var/lib/kick-orchestrator
	chown kick-orchestrator:kick-orchestrator /var/lib/kick-orchestrator
fi
# A first API token (one token a line): root and the service may read it.
tokens=/etc/kick-orchestrator/tokens
if [ ! -e "$tokens" ]; then
	(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$tokens.new" && echo >>"$tokens.new")
	chgrp kick-orchestrator "$tokens.new"
	chmod 0640 "$tokens.new"
	mv "$tokens.new" "$tokens"
	echo "kick-orchestrator: a first API token is in $tokens (see /usr/share/doc/kick-orchestrator/packages.md)"
fi
