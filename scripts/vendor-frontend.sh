#!/usr/bin/env bash
# Copy the pinned front-end libraries the app serves (from node_modules, installed by `npm install`
# from package.json) into host/zishu/web/static/vendor/, which git ignores. Idempotent: a file is
# rewritten only when it differs. `make setup` runs it.
#
#   pixi.js 6.5.x            dist/browser/pixi.min.js           the renderer (global PIXI)
#   @pixi/unsafe-eval 6.5.x  dist/browser/unsafe-eval.min.js    pixi without `new Function` (the CSP forbids eval)
#   pixi-live2d-display 0.4  dist/cubism4.min.js                Live2D Cubism 4/5 models on pixi
#
# The Live2D Cubism Core is not among them: it is Live2D's proprietary code (`zishu live2d core`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
modules="$root/node_modules"
dest="$root/host/zishu/web/static/vendor"

files=(
  "pixi.js/dist/browser/pixi.min.js"
  "pixi.js/dist/browser/pixi.min.js.map"
  "@pixi/unsafe-eval/dist/browser/unsafe-eval.min.js"
  "@pixi/unsafe-eval/dist/browser/unsafe-eval.min.js.map"
  "pixi-live2d-display/dist/cubism4.min.js"
)
licenses=(
  "pixi.js/LICENSE:pixi.js.LICENSE"
  "pixi-live2d-display/LICENSE:pixi-live2d-display.LICENSE"
)

missing=0
for f in "${files[@]}"; do
  if [[ ! -f "$modules/$f" ]]; then
    echo "vendor-frontend: $modules/$f is missing; run \`npm install\` in $root first" >&2
    missing=1
  fi
done
[[ $missing -eq 0 ]] || exit 1

mkdir -p "$dest"
copy() {  # copy SRC to DEST unless DEST already holds the same bytes
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2.tmp.$$"
    mv -f "$2.tmp.$$" "$2"
    echo "vendor-frontend: $(basename "$2")"
  fi
}
for f in "${files[@]}"; do
  copy "$modules/$f" "$dest/$(basename "$f")"
done
for pair in "${licenses[@]}"; do
  src="$modules/${pair%%:*}"
  if [[ -f "$src" ]]; then copy "$src" "$dest/${pair##*:}"; fi
done
