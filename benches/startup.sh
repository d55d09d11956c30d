#!/usr/bin/env bash
# Start-up of a one-line run, side by side with bash in one hyperfine run: `valyxo -c true`
# and `valyxo -c 'echo hi'` against `bash -c` of the same, for the lean client build
# (`--no-default-features`, the build the start-up goal of ≤ 1.5× bash is for) and the
# default build (with the account server). Prints each median and its ratio to bash's.
#
#   bash benches/startup.sh            # builds both (release), then measures
#   RUNS=2000 bash benches/startup.sh  # more runs (default 1000)
#
# Needs hyperfine (Debian: apt-get install hyperfine) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-1000}"
for tool in hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "startup.sh: needs $tool" >&2; exit 2; }
done
cargo build --release --quiet
cargo build --release --quiet --no-default-features --target-dir target/client
full=target/release/valyxo
client=target/client/release/valyxo
home="$(mktemp -d)"
out="$(mktemp)"
trap 'rm -rf "$home" "$out" "$out.err"' EXIT
# A home whose store exists, as after a first run.
"$client" --home "$home" -c ls >/dev/null
for line in true 'echo hi'; do
    # Its warnings about outliers (a busy machine) are shown only if it fails.
    hyperfine -N --warmup 100 --runs "$runs" --export-json "$out" \
        "bash -c '$line'" \
        "$client --home $home -c '$line'" \
        "$full --home $home -c '$line'" >/dev/null 2>"$out.err" || { cat "$out.err" >&2; exit 1; }
    python3 - "$out" "$line" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
bash = results[0]["median"]
names = ["bash", "valyxo (client build)", "valyxo (default build)"]
print(f"-c '{sys.argv[2]}'")
for name, r in zip(names, results):
    print(f"  {name:<24} median {r['median'] * 1e3:6.3f} ms   {r['median'] / bash:4.2f}× bash")
EOF
done
