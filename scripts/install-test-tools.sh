#!/usr/bin/env bash
# System packages the test suite needs. Installed with apt-get when running as root (CI, fresh
# machines); otherwise listed, and the tests that need them skip with a printed reason
# (or fail, under AURA_REQUIRE_ALL=1).
set -euo pipefail
# command:package — chromium runs the widget's browser tests (Playwright drives the system browser;
# nothing is downloaded at test time); espeak-ng gives the simulated text-to-speech a real voice;
# nginx fronts two daphne processes in the production-topology smoke test.
wanted=("chromium:chromium" "espeak-ng:espeak-ng" "nginx:nginx-light")
packages=()
for spec in "${wanted[@]}"; do
  command -v "${spec%%:*}" >/dev/null 2>&1 || packages+=("${spec##*:}")
done
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: apt-get install ${packages[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  echo "install-test-tools: missing ${packages[*]} (not root: install them yourself, or their tests skip)"
fi
