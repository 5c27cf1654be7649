#!/bin/sh
# Make sure the Debian packages the tests need (scripts/test-packages.txt) are installed.
# The integration and end-to-end tests start their own private servers on free loopback
# ports and need only the binaries.
set -eu

here=$(dirname "$0")
list="$here/test-packages.txt"

missing=""
while read -r probe package; do
    case "$probe" in ''|'#'*) continue ;; esac
    if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then
        continue
    fi
    missing="$missing $package"
done < "$list"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "sla-daemon tests need these Debian/Ubuntu packages:$missing (sudo apt-get install$missing)" >&2
    exit 1
fi

echo "Installing$missing for the tests ..." >&2
apt-get update
# shellcheck disable=SC2086 # the package list is meant to split into words
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing

# dovecot-imapd may start the system-wide service. The tests never use it, and nobody
# asked for a mail server either: stop it and keep it from starting at boot.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    service dovecot stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d dovecot disable >/dev/null 2>&1 || true
    fi
fi
