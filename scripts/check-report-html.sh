#!/usr/bin/env bash
# Loads a report's index.html in headless Chromium, takes a screenshot, and
# fails on a console error or a picture that did not load (the page's own
# check writes the count to <body data-images>).
#   scripts/check-report-html.sh REPORT/index.html [SCREENSHOT.png]
# Needs chromium (Debian: apt-get install chromium).
set -euo pipefail
html=$(realpath "$1")
shot=${2:-${html%.html}-screenshot.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium found: apt-get install chromium" >&2; exit 2; }
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 --enable-logging=stderr --v=0)
log=$(mktemp)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$html" 2>"$log")
"$browser" "${flags[@]}" --window-size=1200,2400 --screenshot="$shot" "file://$html" 2>>"$log" >/dev/null
status=0
if grep -E 'CONSOLE|console' "$log" | grep -Eiq 'error|missing image'; then
  echo "console errors:" >&2; grep -E 'CONSOLE|console' "$log" >&2; status=1
fi
state=$(printf '%s' "$dom" | grep -o 'data-images="[^"]*"' | head -n1 || true)
case "$state" in
  'data-images="ok"') ;;
  '') echo "the page's image check did not run (no data-images on <body>)" >&2; status=1 ;;
  *) echo "pictures missing: $state" >&2; status=1 ;;
esac
[ -s "$shot" ] || { echo "no screenshot written" >&2; status=1; }
images=$(printf '%s' "$dom" | grep -o '<img' | wc -l)
[ "$status" = 0 ] && echo "ok: $html renders, $images pictures loaded, no console errors; screenshot $shot"
rm -f "$log"
exit $status
