if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	# Upgrade: a running service restarts on the new binary.
	if [ "$1" -ge 1 ]; then
		systemctl try-restart kick-orchestrator.service >/dev/null 2>&1 || :
	fi
fi
