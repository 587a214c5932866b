#!/usr/bin/env bash
# CPU flame graphs of the server under the load harness: `bash benches/flamegraph.sh [RATES] [SECONDS]`
# (default 500 for 10 s). Needs perf (Debian's linux-perf) and inferno (`cargo install inferno`).
# Writes docs/profile/<database>-<rate>.svg and prints the top frames by share of samples.
set -euo pipefail
cd "$(dirname "$0")/.."
rates="${1:-500}"
seconds="${2:-10}"
out=docs/profile
work=$(mktemp -d)
mkdir -p "$out"
DOCOBO_LOAD_RATES="$rates" DOCOBO_LOAD_SECONDS="$seconds" DOCOBO_LOAD_OVERLOAD=0 DOCOBO_LOAD_PERF="$work" cargo bench --bench load
for data in "$work"/*.perf.data; do
  name=$(basename "$data" .perf.data)
  perf script -i "$data" 2>/dev/null | inferno-collapse-perf > "$work/$name.folded"
  inferno-flamegraph --title "docobo-server: $name webhooks/s" < "$work/$name.folded" > "$out/$name.svg"
  # `head` closes the pipe early; that is not a failure.
  echo "== $name: frames by inclusive share of the server's CPU samples"
  awk '{ n = $NF; $NF = ""; total += n; split($0, f, ";"); delete seen;
         for (i in f) { g = f[i]; sub(/^ +| +$/, "", g); if (!(g in seen)) { seen[g] = 1; incl[g] += n } } }
       END { for (g in incl) printf "%6.2f%%  %s\n", 100 * incl[g] / total, g }' "$work/$name.folded" \
    | sort -rn | head -40 || true
  echo "== $name: frames by self share"
  awk '{ n = $NF; $NF = ""; total += n; k = split($0, f, ";"); g = f[k]; sub(/^ +| +$/, "", g); self[g] += n }
       END { for (g in self) printf "%6.2f%%  %s\n", 100 * self[g] / total, g }' "$work/$name.folded" \
    | sort -rn | head -25 || true
done
rm -rf "$work"
