#!/usr/bin/env bash
# Headless Chromium (Debian's package) for the report test, installed once.
# Without root or apt-get it says why and returns; the test then skips.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get here; the browser test of the run report will skip" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "install_chromium: not root; the browser test of the run report will skip" >&2
    exit 0
  fi
fi
echo "install_chromium: installing Debian's chromium (once)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null; }; then
  echo "install_chromium: apt-get could not install chromium; the browser test will skip" >&2
fi
exit 0
