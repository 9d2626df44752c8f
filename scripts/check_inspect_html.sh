#!/usr/bin/env bash
# Renders `zoo inspect --out report.html` pages (sentiment, NER, translator)
# in headless Chromium: the page's script must run without a console error
# and leave the answer, the diagram and the heatmaps in the DOM. Writes a
# screenshot of each next to it. Needs Debian's `chromium` (apt-get install chromium).
#
#   bash scripts/check_inspect_html.sh [OUT_DIR]      # prints PASS or FAIL
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/inspect-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)
zoo=${ZOO:-target/release/zoo}
[ -x "$zoo" ] || cargo build --release
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "FAIL: no chromium (apt-get install chromium)"; exit 1; }
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --hide-scrollbars --user-data-dir="$(mktemp -d)" --enable-logging=stderr --v=0)
fail=0
check() { # name, then zoo inspect arguments
  local name=$1; shift
  "$zoo" inspect "$@" --out "$out/$name.html" 2>/dev/null
  "$browser" "${flags[@]}" --virtual-time-budget=3000 --dump-dom "file://$out/$name.html" \
      > "$out/$name.dom.html" 2> "$out/$name.console.log" || true
  "$browser" "${flags[@]}" --virtual-time-budget=3000 --window-size=1280,2600 \
      --screenshot="$out/$name.png" "file://$out/$name.html" 2>/dev/null >/dev/null || true
  local ok=1
  grep -q 'data-ready="1"' "$out/$name.dom.html" || { echo "$name: the page's script did not finish"; ok=0; }
  for id in 'id="answer"' 'id="diagram"' 'class="heat"' 'id="bars"><div class="q"'; do
    grep -q "$id" "$out/$name.dom.html" || { echo "$name: $id missing"; ok=0; }
  done
  if grep -E 'Uncaught|CONSOLE.*(Error|error)' "$out/$name.console.log"; then echo "$name: console errors"; ok=0; fi
  local size; size=$(stat -c %s "$out/$name.html")
  [ "$size" -lt 2097152 ] || { echo "$name: $size bytes"; ok=0; }
  echo "$name: $([ $ok = 1 ] && echo ok || echo FAILED) ($size bytes, screenshot $out/$name.png)"
  [ $ok = 1 ] || fail=1
}
check sentiment sentiment-lstm "This movie is not bad at all, and I really enjoyed the story and the actors." --layer 1
check ner ner-bilstm-crf "Angela Merkel met Emmanuel Macron in Paris on Tuesday."
check translate translate-en-de "A man is riding a bicycle down the street." --part decoder
[ $fail = 0 ] && echo PASS || { echo FAIL; exit 1; }
