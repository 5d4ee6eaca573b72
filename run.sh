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
BENCHES=(pool payloads scaling settling transport)

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

say "[1/$total] building the benchmarks (cargo bench -p knit-bench --no-run)"
cargo bench -p knit-bench --no-run >&2

failed=()
step=1
for bench in "${BENCHES[@]}"; do
    step=$((step + 1))
    say "[$step/$total] $bench ..."
    start=$SECONDS
    if cargo bench -q -p knit-bench --bench "$bench" -- "${flags[@]}"; then
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
