#!/bin/sh
# Make sure Dovecot (dovecot-imapd) is installed: the integration and end-to-end tests
# start their own private Dovecot on a free loopback port and need the binary only.
set -eu

HINT="sla-daemon tests need Dovecot: install the Debian/Ubuntu package dovecot-imapd (sudo apt-get install dovecot-imapd)"

have_dovecot() {
    # /usr/sbin is often missing from an ordinary user's PATH.
    command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]
}

if have_dovecot; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$HINT" >&2
    exit 1
fi

echo "Installing dovecot-imapd for the integration tests ..." >&2
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd

# The package may start the system-wide service. The tests never use it, but nobody
# asked for a mail server either: stop it and keep it from starting at boot.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    service dovecot stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d dovecot disable >/dev/null 2>&1 || true
    fi
fi

if ! have_dovecot; then
    echo "dovecot-imapd was installed but no dovecot binary was found. $HINT" >&2
    exit 1
fi
