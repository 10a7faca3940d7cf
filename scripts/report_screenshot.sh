#!/usr/bin/env bash
# Regenerate docs/report-screenshot.png: a report of ../shared/data/eval with the bundled model, opened
# in headless Chromium (Debian: apt-get install chromium), top 2330 px, quantised to 256 colours.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/specsr-eval-report}"
.venv/bin/specsr report ../shared/data/eval -o "$out" --model bundled --force -q
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1480,2330 --screenshot="$profile/shot.png" "file://$(realpath "$out")/index.html" 2>/dev/null
.venv/bin/python - "$profile/shot.png" docs/report-screenshot.png <<'PY'
import sys
from PIL import Image

Image.open(sys.argv[1]).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(sys.argv[2], optimize=True)
PY
echo "wrote docs/report-screenshot.png (report in $out)"
