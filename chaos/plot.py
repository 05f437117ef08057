"""plot: a PNG timeline of one scenario run, drawn with gnuplot.

One line per agent: how many members it sees alive, sampled every 0.5 s
(a gap means the agent did not answer: crashed or paused). Each fault is a
shaded band with its line of the scenario as a label.
"""
import os
import subprocess

COLORS = {"crash": "#d62728", "pause": "#ff7f0e", "partition": "#9467bd",
          "oneway": "#8c564b", "loss": "#1f77b4", "delay": "#2ca02c",
          "dup": "#17becf", "kill": "#000000", "restart": "#e377c2"}


def write_data(path, samples, names):
    """Columns: t, then one per agent (NaN where it had no answer, which
    gnuplot draws as a gap)."""
    by_t = {}
    for t, agent, alive, _ in samples:
        # Samples of one sweep share a time bucket of 0.5 s.
        by_t.setdefault(round(t * 2) / 2, {})[agent] = alive
    with open(path, "w") as f:
        f.write("# t " + " ".join(names) + "\n")
        for t in sorted(by_t):
            row = by_t[t]
            f.write("%.1f %s\n" % (t, " ".join(
                str(row[n]) if n in row else "NaN" for n in names)))


def draw(png, samples, events, t0, n, title, t_conv=None):
    """Writes png (and png's .dat and .gp next to it); returns png."""
    names = ["n%d" % i for i in range(1, n + 1)]
    base = os.path.splitext(png)[0]
    dat, gp = base + ".dat", base + ".gp"
    write_data(dat, samples, names)
    lines = [
        'set terminal pngcairo size 1200,%d font "sans,10"' % (520 + 4 * n),
        'set output "%s"' % png,
        'set title "%s"' % title.replace('"', "'"),
        'set xlabel "seconds since the first fault"',
        'set ylabel "members seen alive"',
        "set yrange [0:%d]" % (n + 2 + (n // 8)),
        "set grid ytics",
        "set key outside right top" if n <= 16 else "unset key",
    ]
    # Faults: shaded bands, stacked labels so overlapping ones stay legible.
    for k, ev in enumerate(events):
        if "t_start" not in ev:
            continue
        a, b = ev["t_start"] - t0, ev["t_end"] - t0
        c = COLORS.get(ev["kind"], "#888888")
        lines.append('set object rect from %.2f, graph 0 to %.2f, graph 1 '
                     'fc rgb "%s" fs transparent solid 0.15 noborder '
                     'behind' % (a, b, c))
        label = ev["line"].split(" ", 2)[2]
        lines.append('set label "%s" at %.2f, graph %.3f font ",8" tc rgb '
                     '"%s"' % (label.replace('"', "'"), a + 0.3,
                               0.97 - 0.04 * (k % 6), c))
    if t_conv is not None:
        lines.append('set arrow from %.2f, graph 0 to %.2f, graph 1 nohead '
                     'dt 2 lc rgb "black"' % (t_conv, t_conv))
        lines.append('set label "converged" at %.2f, graph 0.05 font ",8"'
                     % (t_conv + 0.3))
    # A small vertical offset per agent keeps agents that agree (the usual
    # case) from hiding each other behind one line.
    spread = 0.4 / n
    plots = ['"%s" using 1:($%d%+.3f) with lines lw 1.5 title "%s"'
             % (dat, i + 2, (i - (n - 1) / 2.0) * spread, name)
             for i, name in enumerate(names)]
    lines.append("plot " + ", \\\n     ".join(plots))
    with open(gp, "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(["gnuplot", gp], check=True, capture_output=True,
                   timeout=60)
    return png
