#!/usr/bin/env bash
# Runs every benchmark: knit side by side with its peers and floors.
#
#   ./run.sh [--quick] [--json] [--filter NAME]
#
# Builds the bench binaries of the knit-bench package (benches/) once (bench
# profile: LTO, codegen-units=1), then runs each with a progress line per step
# on stderr. Each binary writes, per result, results/<name>.json,
# results/<name>.md and results/<name>.svg; a full run then renders
# results/SUMMARY.md from them (benches/support/summary.py).
#
#   --quick        short runs (CI smoke test); written to results/quick/, and no
#                  SUMMARY.md is rendered
#   --json         stdout carries only JSON: one document per result, one per line
#                  (JSON Lines; each document has a "name")
#   --filter NAME  only results or scenario groups whose name contains NAME
#
# Exits non-zero if a benchmark crashes (never because of its speed).
set -euo pipefail
cd "$(dirname "$0")"

# Bench targets, in the order they run. New families (JS lanes, process lanes)
# add their bench target here.
BENCHES=(pool payloads scaling settling transport js strict)

# Cargo features a bench target needs (the others build without them: the js
# bench's `js` feature builds QuickJS, which is C; the strict bench needs it too).
features_of() {
    case "$1" in
        js | strict) echo "--features js" ;;
        *) echo "" ;;
    esac
}

quick=0
json=0
filter=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --json) json=1 ;;
        --filter)
            [[ $# -ge 2 ]] || { echo "run.sh: --filter needs a NAME" >&2; exit 2; }
            filter="$2"
            shift
            ;;
        --filter=*) filter="${1#--filter=}" ;;
        -h | --help)
            sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "run.sh: unknown flag $1 (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done

# cargo runs bench binaries in their package's directory (benches/), so the
# output directory is passed as an absolute path.
out=results
[[ $quick == 1 ]] && out=results/quick
flags=(--out "$PWD/$out")
[[ $quick == 1 ]] && flags+=(--quick)
[[ $json == 1 ]] && flags+=(--json)
[[ -n $filter ]] && flags+=(--filter "$filter")
mkdir -p "$out"

total=$((${#BENCHES[@]} + 1))
say() { printf '%s\n' "$*" >&2; }

# The js bench's node peers (piscina, tinypool): the pinned
# benches/js-peers/package-lock.json installed with `npm ci` into .cache/js-peers/
# (again only when the lock file changed). Without node or npm, or when the
# install fails (no registry), the bench runs without them and says so.
js_peers() {
    local src=benches/js-peers dir=.cache/js-peers
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        say "js peers: node or npm not found; piscina and tinypool are skipped"
        return 0
    fi
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$src/bench.mjs" "$src/worker.mjs" "$dir/"
    if ! cmp -s "$src/package-lock.json" "$dir/.installed-lock.json" 2>/dev/null; then
        say "js peers: npm ci into $dir (piscina, tinypool; pinned in $src/package-lock.json)"
        rm -f "$dir/.installed-lock.json"
        if timeout 300 npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts >&2; then
            cp "$src/package-lock.json" "$dir/.installed-lock.json"
        else
            say "js peers: npm ci failed (is the npm registry reachable?); piscina and tinypool are skipped"
            rm -rf "$dir/node_modules"
        fi
    fi
    if [[ -f $dir/.installed-lock.json ]]; then
        export KNIT_JS_PEERS="$PWD/$dir/bench.mjs"
    else
        export KNIT_JS_PEERS="$PWD/$dir/not-installed"
    fi
}

say "[1/$total] building the benchmarks (cargo bench -p knit-bench --no-run)"
cargo bench -p knit-bench --no-run >&2
for bench in "${BENCHES[@]}"; do
    features=$(features_of "$bench")
    # shellcheck disable=SC2086 # $features is zero or two words
    [[ -z $features ]] || cargo bench -p knit-bench $features --bench "$bench" --no-run >&2
done

failed=()
step=1
for bench in "${BENCHES[@]}"; do
    step=$((step + 1))
    say "[$step/$total] $bench ..."
    start=$SECONDS
    features=$(features_of "$bench")
    [[ $bench == js ]] && js_peers
    # shellcheck disable=SC2086 # $features is zero or two words
    if cargo bench -q -p knit-bench $features --bench "$bench" -- "${flags[@]}"; then
        say "[$step/$total] $bench done in $((SECONDS - start)) s"
    else
        say "[$step/$total] $bench FAILED (exit $?)"
        failed+=("$bench")
    fi
done

if [[ $quick == 0 && ${#failed[@]} == 0 ]]; then
    say "rendering $out/SUMMARY.md"
    python3 benches/support/summary.py "$out" >&2
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    say "benchmarks that failed: ${failed[*]}"
    exit 1
fi
say "results in $out/"
