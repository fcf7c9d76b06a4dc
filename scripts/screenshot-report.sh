#!/usr/bin/env bash
# Renders the bench report in headless Chromium and saves a screenshot, to see
# what a reader of report.html sees (tables and inline plots).
#
#   scripts/screenshot-report.sh [REPORT_HTML] [OUT_PNG]
#
# Defaults: target/bench-report/report.html -> target/bench-report/report-screenshot.png.
# Installs Debian's `chromium` package when it is missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
report="${1:-target/bench-report/report.html}"
out="${2:-target/bench-report/report-screenshot.png}"
[ -f "$report" ] || { echo "no $report: run cargo xtask bench first" >&2; exit 1; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# A tall window: the whole page in one picture.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1200,"${HEIGHT:-6000}" --screenshot="$out" "file://$(realpath "$report")" 2>/dev/null
echo "$out"
