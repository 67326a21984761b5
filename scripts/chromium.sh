#!/usr/bin/env bash
# Debian's Chromium, for the test that checks the benchmark report as a browser shows it.
# Installs it with apt-get when missing and possible (root, apt); prints the browser's path.
set -euo pipefail

for candidate in "${PTC_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found and apt-get is not usable here: install Debian's chromium" >&2
  exit 1
fi
echo "installing chromium with apt-get (once)" >&2
apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
  { apt-get update -qq >/dev/null 2>&1 &&
    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } ||
  { echo "apt-get could not install chromium" >&2; exit 1; }
echo /usr/bin/chromium
