#!/bin/sh
# Install the third-party programs avouch's interop tests run against
# (see docs/INTEROP.md): XML-DSig verifiers, WS-Trust clients, PostgreSQL and
# OpenLDAP. Called by `make check`.
#
# Idempotent: when everything is installed it only says so. As root it
# installs what is missing (running `apt-get update` once, and only then);
# as any other user it lists what is missing and exits 1, so that `make check`
# fails with a clear message instead of skipping tests.
set -eu

PACKAGES="xmlsec1 opensaml-tools python3-zeep python3-msal python3-xmlsec postgresql slapd ldap-utils openssl openjdk-17-jre-headless chromium"

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-test-tools: dpkg-query not found; these tests need Debian 12 packages: $PACKAGES" >&2
	exit 1
fi

missing=""
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		missing="$missing $pkg"
	fi
done

if [ -z "$missing" ]; then
	echo "install-test-tools: all test tools installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-tools: missing Debian packages:$missing" >&2
	echo "install-test-tools: run as root (e.g. sudo $0) to install them" >&2
	exit 1
fi

echo "install-test-tools: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y --no-install-recommends $missing
