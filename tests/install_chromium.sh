#!/usr/bin/env bash
# Headless Chromium for tests/test_html.py's slow test (Debian's package); needs root and apt.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
