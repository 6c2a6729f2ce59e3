#!/usr/bin/env bash
# contrib/prometheus/alerts.yaml: valid rules (`promtool check rules`) that fire when they should
# (`promtool test rules alerts_test.yaml`). promtool is Debian's `prometheus` package
# (scripts/install-deps.sh --ci). Exits 77 (ctest: skipped) where it is missing, except in CI.
#   check_rules.sh <source dir>
set -euo pipefail
cd "$1/contrib/prometheus"
if ! command -v promtool >/dev/null; then
  if [[ -n "${CI:-}" ]]; then
    echo "promtool is missing in CI: scripts/install-deps.sh --ci installs it"
    exit 1
  fi
  echo "promtool not installed (apt-get install prometheus): skipped"
  exit 77
fi
promtool check rules alerts.yaml
promtool test rules alerts_test.yaml
