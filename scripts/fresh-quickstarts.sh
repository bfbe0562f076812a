#!/usr/bin/env bash
# Builds each README quickstart (actix-web, axum) as pasted into a fresh crate: the README's
# [dependencies] block and code block, nothing else, with this checkout's crates patched in for
# the `nextgen-*` versions not yet published. CI runs it, so the README cannot drift from what
# compiles.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for heading in "Quickstart: actix-web" "Quickstart: axum"; do
    crate="$work/fresh-$(echo "$heading" | tr -cd 'a-z')"
    mkdir -p "$crate/src"
    python3 - "$root/README.md" "$heading" "$crate" "$root" <<'PY'
import sys
readme, heading, crate, root = sys.argv[1:]
text = open(readme).read()
section = text[text.index("## " + heading):]
def block(kind):
    start = section.index("```" + kind + "\n") + len(kind) + 4
    return section[start:section.index("```", start)]
manifest = '[package]\nname = "fresh"\nversion = "0.1.0"\nedition = "2024"\n\n' + block("toml")
manifest += "\n[patch.crates-io]\n" + "".join(
    f'{name} = {{ path = "{root}/{name}" }}\n'
    for name in ("nextgen-events", "nextgen-macros", "nextgen-catalog")
)
open(f"{crate}/Cargo.toml", "w").write(manifest)
open(f"{crate}/src/main.rs", "w").write(block("rust"))
PY
    echo "== $heading: a fresh crate"
    # Warnings are errors: a quickstart users paste must not warn either.
    (cd "$crate" && RUSTFLAGS="-D warnings" CARGO_TARGET_DIR="$root/target/fresh-quickstarts" cargo build -q)
done
echo "both quickstarts build as pasted"
