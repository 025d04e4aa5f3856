#!/usr/bin/env bash
# Debian's Chromium for the browser test (test/browser.test.ts drives it headless
# through playwright-core; no browser is ever downloaded).
#
#   sudo bash scripts/setup-chromium.sh
#
# Idempotent: exits at once when /usr/bin/chromium is there.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "No apt-get: install Chromium by hand and point WGTORCH_CHROMIUM at it." >&2
  exit 1
fi
if [[ $EUID -ne 0 ]]; then
  echo "Run as root: sudo bash scripts/setup-chromium.sh" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
/usr/bin/chromium --version
