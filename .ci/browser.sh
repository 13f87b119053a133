#!/usr/bin/env bash
# Install Debian's headless Chromium and its chromedriver for the browser tests (tests/ui/test_browser.py).
# Idempotent; nothing is downloaded at test time.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
echo "$(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
