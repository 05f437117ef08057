#!/bin/sh
# tests/sim/plots.sh - regenerates the simulator figures of docs/simulator.md:
# docs/img/sim-*.png and the tables between the "sim-tables" markers.
#
#   tests/sim/plots.sh            # everything (about 10 min on 2 idle cores)
#   NS="100 1000" tests/sim/plots.sh   # skip the 10,000-node point
#
# Environment: BUILD (build dir, default build-sim), SEEDS (seeds per point,
# default "1 2 3"), SEEDS_10K (seeds at N >= 10,000, default "1 2 3"), NS,
# LOSSES, LOSS_N (N of the loss sweep, default 1000).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-sim}
SEEDS=${SEEDS:-"1 2 3"}
SEEDS_10K=${SEEDS_10K:-"1 2 3"}
NS=${NS:-"100 1000 10000"}
LOSSES=${LOSSES:-"0 0.05 0.1 0.2"}
LOSS_N=${LOSS_N:-1000}
IMG=$ROOT/docs/img
DOC=$ROOT/docs/simulator.md
SIM=$BUILD/tests/sim/meshsim

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target meshsim >/dev/null
mkdir -p "$IMG"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for n in $NS; do
	seeds=$SEEDS
	[ "$n" -ge 10000 ] && seeds=$SEEDS_10K
	for s in $seeds; do
		echo "crash1 N=$n seed=$s" >&2
		"$SIM" --nodes "$n" --seed "$s" --scenario crash1 --json >>"$TMP/n.jsonl"
	done
done
for p in $LOSSES; do
	for s in $SEEDS; do
		echo "crash1 N=$LOSS_N loss=$p seed=$s" >&2
		"$SIM" --nodes "$LOSS_N" --seed "$s" --scenario crash1 --loss "$p" \
		    --json >>"$TMP/loss.jsonl"
	done
done
for p in 0 0.1; do
	for sc in join crash1 crash10pct partition slow1; do
		echo "$sc N=$LOSS_N loss=$p seed=1" >&2
		"$SIM" --nodes "$LOSS_N" --seed 1 --scenario "$sc" --loss "$p" \
		    --json >>"$TMP/scen.jsonl"
	done
done

python3 - "$TMP" "$DOC" <<'PY'
import json, math, sys, collections
tmp, doc = sys.argv[1], sys.argv[2]
def load(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}") if l.strip()]
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
def s(v, unit=1000.0, nd=2):
    return "-" if v is None else f"{v / unit:.{nd}f}"
def group(rows, key):
    g = collections.OrderedDict()
    for r in rows:
        g.setdefault(r[key], []).append(r)
    return g
KEYS = ["first_suspect_ms", "first_dead_ms", "dead_50pct_ms",
        "dead_99pct_ms", "dead_100pct_ms"]
def agg(rs):
    a = {k: mean([r[k] for r in rs]) for k in KEYS}
    a["dissem_ms"] = mean([r["dead_100pct_ms"] - r["first_dead_ms"]
                           for r in rs if r["dead_100pct_ms"] is not None
                           and r["first_dead_ms"] is not None])
    a["worst100"] = max((r["dead_100pct_ms"] or 0) for r in rs)
    a["msgs"] = mean([r["msgs_per_node_per_period"]["mean"] for r in rs])
    a["msgs_max"] = max(r["msgs_per_node_per_period"]["max"] for r in rs)
    a["steady"] = mean([r["steady_msgs_per_node_per_period"]["mean"] for r in rs])
    a["bytes"] = mean([r["bytes_per_node_per_period"]["mean"] for r in rs])
    a["stream"] = mean([r["stream_bytes_per_node_per_period"]["mean"] for r in rs])
    a["fs"] = sum(r["false_suspect"] for r in rs)
    a["fd"] = sum(r["false_dead"] for r in rs)
    a["runs"] = len(rs)
    a["wall"] = max(r["wall_ms"] for r in rs)
    a["rss"] = max(r["peak_rss_kb"] for r in rs)
    return a
out = []
byn = group(load("n.jsonl"), "nodes")
out.append("### Detection and dissemination versus N (crash1, no loss)\n")
out.append("Times in seconds from the crash, mean over the runs; "
           "dissemination = 100% minus first declaration. "
           "msgs = datagrams sent per node per probe period over the whole "
           "run (steady: before the crash).\n")
out.append("| N | runs | first suspect | first dead | 50% | 99% | 100% | worst 100% | dissemination | 100% / log10(N) | msgs mean / max | steady msgs | bytes/period | push-pull bytes/period | false suspect / dead | wall s | peak RSS MiB |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
with open(f"{tmp}/n.dat", "w") as f:
    for n, rs in byn.items():
        a = agg(rs)
        lg = math.log10(n)
        out.append(f"| {n:,} | {a['runs']} | {s(a['first_suspect_ms'])} | {s(a['first_dead_ms'])} | "
                   f"{s(a['dead_50pct_ms'])} | {s(a['dead_99pct_ms'])} | {s(a['dead_100pct_ms'])} | "
                   f"{s(a['worst100'])} | {s(a['dissem_ms'])} | {s(a['dead_100pct_ms'] / lg if a['dead_100pct_ms'] else None)} | "
                   f"{a['msgs']:.2f} / {a['msgs_max']:.2f} | {a['steady']:.2f} | {a['bytes']:.0f} | {a['stream']:.0f} | "
                   f"{a['fs']} / {a['fd']} | {a['wall'] / 1000:.1f} | {a['rss'] / 1024:.0f} |")
        f.write(f"{n} " + " ".join(str((a[k] or 0) / 1000) for k in KEYS)
                + f" {(a['dissem_ms'] or 0) / 1000} {a['msgs']}\n")
out.append("")
byl = group(load("loss.jsonl"), "loss")
n_loss = load("loss.jsonl")[0]["nodes"]
out.append(f"### Detection and dissemination versus loss (crash1, N = {n_loss:,})\n")
out.append("| loss | runs | first suspect | first dead | 50% | 99% | 100% | worst 100% | dissemination | msgs mean / max | bytes/period | false suspect | false dead |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
with open(f"{tmp}/loss.dat", "w") as f:
    for p, rs in byl.items():
        a = agg(rs)
        out.append(f"| {p * 100:g}% | {a['runs']} | {s(a['first_suspect_ms'])} | {s(a['first_dead_ms'])} | "
                   f"{s(a['dead_50pct_ms'])} | {s(a['dead_99pct_ms'])} | {s(a['dead_100pct_ms'])} | "
                   f"{s(a['worst100'])} | {s(a['dissem_ms'])} | {a['msgs']:.2f} / {a['msgs_max']:.2f} | "
                   f"{a['bytes']:.0f} | {a['fs']} | {a['fd']} |")
        f.write(f"{p * 100} " + " ".join(str((a[k] or 0) / 1000) for k in KEYS)
                + f" {(a['dissem_ms'] or 0) / 1000} {a['msgs']}\n")
out.append("")
sc = load("scen.jsonl")
out.append(f"### Every scenario once (N = {sc[0]['nodes']:,}, seed 1)\n")
out.append("| scenario | loss | first suspect | 100% dead | converged | false suspect / dead | msgs mean / max | slow node health / suspected / its suspicions | trace_hash | wall s |")
out.append("|---|---|---|---|---|---|---|---|---|---|")
for r in sc:
    slow = "-" if "slow_node" not in r else f"{r['slow_max_health']} / {r['slow_suspected']} / {r['slow_suspicions']}"
    out.append(f"| {r['scenario']} | {r['loss'] * 100:g}% | {s(r['first_suspect_ms'])} | {s(r['dead_100pct_ms'])} | "
               f"{s(r['converged_ms'])} | {r['false_suspect']} / {r['false_dead']} | "
               f"{r['msgs_per_node_per_period']['mean']:.2f} / {r['msgs_per_node_per_period']['max']:.2f} | {slow} | "
               f"`{r['trace_hash']}` | {r['wall_ms'] / 1000:.1f} |")
out.append("")
raw = "".join(open(f"{tmp}/{name}").read()
              for name in ("n.jsonl", "loss.jsonl", "scen.jsonl"))
out.append("<details><summary>Raw JSON of every run above</summary>\n")
out.append("```json")
out.append(raw.rstrip("\n"))
out.append("```")
out.append("</details>")
out.append("")
text = open(doc).read()
b, e = "<!-- sim-tables:begin -->", "<!-- sim-tables:end -->"
i, j = text.index(b) + len(b), text.index(e)
open(doc, "w").write(text[:i] + "\n" + "\n".join(out) + "\n" + text[j:])
PY

cd "$TMP"
gnuplot <<GP
set terminal pngcairo size 800,500 font ",11"
set grid
set key below
set ylabel "seconds after the crash"
set output "$IMG/sim-detect-vs-n.png"
set title "crash1, no loss: detection and dissemination vs N"
set logscale x
set xlabel "nodes (log scale)"
set xtics ("100" 100, "1,000" 1000, "10,000" 10000)
plot "n.dat" u 1:2 w lp t "first suspicion", \
     "" u 1:3 w lp t "first declared dead", \
     "" u 1:4 w lp t "50% know dead", \
     "" u 1:6 w lp t "100% know dead", \
     "" u 1:7 w lp t "dissemination (100% - first dead)"
unset logscale x
set output "$IMG/sim-detect-vs-loss.png"
set title "crash1, N = $LOSS_N: detection and dissemination vs datagram loss"
set xlabel "datagram loss (%)"
set xtics auto
plot "loss.dat" u 1:2 w lp t "first suspicion", \
     "" u 1:3 w lp t "first declared dead", \
     "" u 1:4 w lp t "50% know dead", \
     "" u 1:6 w lp t "100% know dead", \
     "" u 1:7 w lp t "dissemination (100% - first dead)"
set output "$IMG/sim-msgs-vs-n.png"
set title "crash1: datagrams per node per probe period vs N"
set logscale x
set xlabel "nodes (log scale)"
set xtics ("100" 100, "1,000" 1000, "10,000" 10000)
set ylabel "datagrams / node / period"
set yrange [0:*]
plot "n.dat" u 1:8 w lp t "whole run (mean)"
GP
echo "wrote $IMG/sim-detect-vs-n.png $IMG/sim-detect-vs-loss.png $IMG/sim-msgs-vs-n.png and the tables in $DOC" >&2
