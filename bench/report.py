#!/usr/bin/python3
"""Summarize normkit_bench results as Markdown tables and PNG plots.

Exact command (bench/run.sh runs it after the benchmarks):

    /usr/bin/python3 bench/report.py bench/results/single.json bench/results/threads.json -o bench/results

Inputs are Google Benchmark JSON files (--benchmark_out=F --benchmark_out_format=json),
typically one single-threaded run pinned to a core and one run of normkit_mt.
Every ratio is taken against the floor of the same file (run), shape, type and
size, because the machine is shared and absolute numbers drift between runs.

Outputs (in the -o directory): report.md, and ratios_<MiB>MiB.png per size.

Backward benchmarks (op `<op>_backward`) are kept out of the forward tables and
plots; they get their own section, against their own floor `floor_axpby`
(y = a*x + b*z: two tensors read, one written, as a backward reads x or y and dy
and writes dx).
"""

import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict

# Columns: the row lengths of the contiguous layout, then the two strided layouts.
SHAPES = [("rowmajor", 64), ("rowmajor", 768), ("rowmajor", 4096), ("rowmajor", 32768),
          ("rowmajor_axis0", 768), ("colmajor_last", 768)]
SHAPE_LABELS = ["64", "768", "4096", "32768", "strided: RowMajor [n,768] axis 0",
                "strided: ColMajor [n,768] last axis"]
SHORT_LABELS = ["64", "768", "4096", "32768", "RM ax0", "CM last"]
LAYOUTS = ["rowmajor", "rowmajor_axis0", "colmajor_last"]  # the `strided` counter indexes this
OPS = ["sum_to_one", "l1", "l2", "max_norm", "min_max", "z_score", "layer_norm", "rms_norm",
       "softmax", "log_softmax"]
IMPLS = ["normkit", "normkit_mt", "eigen_naive", "onednn", "torch"]
FLOORS = ["floor_scale", "floor_memcpy"]
TYPES = ["float", "double"]
BACKWARD = "_backward"  # op-name suffix of the backward benchmarks
BWD_OPS = OPS + ["layer_norm_noaffine"]  # LayerNorm without gamma/beta: timed backward only
BWD_IMPLS = ["normkit", "normkit_saved", "normkit_mt", "onednn", "torch"]
BWD_OURS = ["normkit", "normkit_saved"]  # normkit_saved: the backward from the forward's saved statistics
BWD_PEERS = ["onednn", "torch"]
BWD_FLOOR = "floor_axpby"

NAME = re.compile(r"^(?P<op>[^/]+)/(?P<impl>[^/]+)/(?P<type>[^/]+)/(?P<layout>[^/]+)"
                  r"/cols:(?P<cols>\d+)/MiB:(?P<mib>[\d.]+)")


def parse(paths):
    """-> (results, errors, contexts); results[(run, impl, op, type, mib, layout, cols)] = bytes/s."""
    results, errors, contexts = {}, [], []
    for run, path in enumerate(paths):
        with open(path) as f:
            doc = json.load(f)
        contexts.append((path, doc.get("context", {})))
        for b in doc.get("benchmarks", []):
            if b.get("run_type") == "aggregate":
                continue
            m = NAME.match(b["name"])
            if not m:
                continue
            if b.get("error_occurred"):
                errors.append((b["name"], b.get("error_message", "")))
                continue
            # Counters when present (robust to name changes), else the name.
            layout = LAYOUTS[int(b["strided"])] if "strided" in b else m["layout"]
            cols = int(b.get("cols", m["cols"]))
            mib = float(b.get("mib", m["mib"]))
            results[(run, m["impl"], m["op"], m["type"], mib, layout, cols)] = b["bytes_per_second"]
    return results, errors, contexts


def ratios(results, floor):
    """ratio[(impl, op, type, mib, layout, cols)] = bytes/s over the same run's floor."""
    out = {}
    for (run, impl, op, typ, mib, layout, cols), bps in results.items():
        ref = results.get((run, floor, "floor", typ, mib, layout, cols))
        if ref:
            out[(impl, op, typ, mib, layout, cols)] = bps / ref
    return out


def best(results):
    """Drops the run index; a key present in several runs (the floors) keeps the first run's
    value, so the per-shape tables show the floor the single-thread ratios were taken against."""
    return {k[1:]: v for k, v in sorted(results.items(), reverse=True)}


def geomean(values):
    values = [v for v in values if v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def fmt_mib(mib):
    return f"{mib:g}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def is_backward(key):
    """Whether a results key (run, impl, op, ...) belongs to the backward section."""
    return key[2].endswith(BACKWARD) or key[1] == BWD_FLOOR


def report(results, errors, contexts, plots):
    """results: every benchmark; the forward tables see only the forward ones."""
    backward = backward_section(results)
    results = {k: v for k, v in results.items() if not is_backward(k)}
    r_scale, r_memcpy = ratios(results, "floor_scale"), ratios(results, "floor_memcpy")
    gbs = best(results)
    sizes = sorted({k[4] for k in results})
    out = ["# normkit benchmark results", ""]
    out.append("Throughput counts one read and one write of the tensor (2 x its bytes) per call. "
               "Ratios are against `floor_scale` (y = c*x, a plain loop over the same buffers) of the "
               "same run, shape, type and size; above 1 means faster than that loop. `normkit_mt` uses "
               "2 threads, everything else one thread pinned to one core.")
    out.append("")
    out.append("Columns: rows of length 64..32768 of a RowMajor [rows, cols] tensor along axis 1 "
               "(contiguous); `strided: RowMajor [n,768] axis 0` normalizes slices of length n with "
               "stride 768; `strided: ColMajor [n,768] last axis` normalizes slices of length 768 with "
               "stride n (Eigen's default layout, the feature axis).")
    out.append("")
    for path, ctx in contexts:
        desc = ", ".join(f"{k} {ctx[k]}" for k in ("date", "host_name", "num_cpus", "mhz_per_cpu", "peers",
                                                   "normkit_mt") if k in ctx)
        out.append(f"- `{os.path.basename(path)}`: {desc}")
    out.append("")

    for mib in sizes:
        for typ in TYPES:
            rows = []
            for op in OPS:
                cells = []
                for layout, cols in SHAPES:
                    key = ("normkit", op, typ, mib, layout, cols)
                    if key in gbs:
                        ratio = r_scale.get(key)
                        cells.append(f"{gbs[key] / 1e9:.1f} ({ratio:.2f})" if ratio else f"{gbs[key] / 1e9:.1f}")
                    else:
                        cells.append("")
                if any(cells):
                    rows.append([op] + cells)
            floor_cells = []
            for layout, cols in SHAPES:
                v = gbs.get(("floor_scale", "floor", typ, mib, layout, cols))
                floor_cells.append(f"{v / 1e9:.1f}" if v else "")
            if not rows:
                continue
            out.append(f"## normkit, {typ}, {fmt_mib(mib)} MiB: GB/s (ratio to floor_scale)")
            out.append("")
            out.append(table(["op"] + SHAPE_LABELS, rows + [["*floor_scale GB/s*"] + floor_cells]))
            out.append("")

    for mib in sizes:
        for floor, rat in (("floor_scale", r_scale), ("floor_memcpy", r_memcpy)):
            impls = [i for i in IMPLS if any(k[0] == i and k[3] == mib for k in rat)]
            if not impls:
                continue
            rows = []
            for op in OPS + ["all ops"]:
                cells = []
                for impl in impls:
                    vals = [v for k, v in rat.items() if k[0] == impl and k[3] == mib and (op == "all ops" or k[1] == op)]
                    g = geomean(vals)
                    cells.append(f"{g:.2f} ({len(vals)})" if g else "")
                rows.append([op if op != "all ops" else "**all ops**"] + cells)
            out.append(f"## Summary, {fmt_mib(mib)} MiB: geometric-mean ratio to {floor} "
                       "(number of shape x type cases)")
            out.append("")
            out.append(table(["op"] + impls, rows))
            out.append("")

    out += ["## normkit against the faster peer, per shape", ""]
    out += against_peers(r_scale, sizes, OPS, "", ["normkit"], ["onednn", "torch", "eigen_naive"], "floor_scale", {})
    out += threads_section(r_scale, sizes)
    out += bounds_section(r_scale, sizes)
    out += backward

    if plots:
        out.append("## Plots")
        out.append("")
        out += [f"![ratio to floor_scale, {os.path.splitext(p)[0]}]({p})" for p in plots]
        out.append("")
    if errors:
        out.append("## Failed checks / errors (not timed)")
        out.append("")
        out += [f"- `{name}`: {msg}" for name, msg in errors]
        out.append("")
    return "\n".join(out)


def threads_section(r_scale, sizes):
    """normkit_mt over normkit, each taken relative to its own run's floor_scale (so drift
    between the runs cancels), next to what the floor loop itself gains split over the same
    pool (floor_scale_mt over floor_scale, one run)."""
    if not any(k[0] == "normkit_mt" for k in r_scale):
        return []
    rows = []
    for op in OPS + ["all ops"]:
        cells = []
        for mib in sizes:
            vals = [v / r_scale[("normkit",) + k[1:]] for k, v in r_scale.items()
                    if k[0] == "normkit_mt" and k[3] == mib and (op == "all ops" or k[1] == op)
                    and ("normkit",) + k[1:] in r_scale]
            g = geomean(vals)
            cells.append(f"{g:.2f} ({len(vals)})" if g else "")
        rows.append([op if op != "all ops" else "**all ops**"] + cells)
    floor_cells = []
    for mib in sizes:
        g = geomean([v for k, v in r_scale.items() if k[0] == "floor_scale_mt" and k[3] == mib])
        floor_cells.append(f"{g:.2f}" if g else "")
    return ["## Threads: 2-thread throughput over 1-thread throughput (number of cases)", "",
            table(["op"] + [f"{fmt_mib(m)} MiB" for m in sizes],
                  rows + [["*y = c·x loop (floor_scale_mt / floor_scale)*"] + floor_cells]), ""]


BOUNDS = [("bound_two_pass", "x read twice, y written once (`bound_two_pass`)"),
          ("bound_exp", "y = exp(x - 1) with normkit's exp kernel (`bound_exp`)")]


def bounds_section(r_scale, sizes):
    """The bound loops' ratios to floor_scale (same run; geometric mean over the shapes they
    were registered with, as they ignore the shape)."""
    cols = [(typ, mib) for mib in sizes for typ in TYPES]
    rows = []
    for impl, label in BOUNDS:
        cells = [geomean([v for k, v in r_scale.items() if k[0] == impl and k[2] == typ and k[3] == mib])
                 for typ, mib in cols]
        if any(cells):
            rows.append([label] + [f"{g:.2f}" if g else "" for g in cells])
    if not rows:
        return []
    return ["## Bounds: the least work of some normalizations, ratio to floor_scale", "",
            "A normalization whose slices leave the cache between its statistics and its map (the "
            "strided chunks at 256 MiB) reads the tensor twice; softmax computes one exp per element. "
            "Neither can get closer to floor_scale than these loops do.", "",
            table(["bound"] + [f"{typ} {fmt_mib(mib)} MiB" for typ, mib in cols], rows), ""]


def backward_section(results):
    """The backward benchmarks: per size and type, normkit's GB/s and ratio to floor_axpby per
    op and shape, normkit's throughput over each peer's (same run), and a summary of every
    impl's geometric-mean ratio to floor_axpby."""
    results = {k: v for k, v in results.items() if is_backward(k)}
    if not any(k[2].endswith(BACKWARD) for k in results):
        return []
    r_floor = ratios(results, BWD_FLOOR)
    gbs = best(results)
    sizes = sorted({k[4] for k in results})
    out = ["## Backward passes", "",
           "dx from x (softmax, log_softmax: from the forward's output y) and dy, plus dgamma and dbeta "
           "for layer_norm (dgamma for rms_norm); `layer_norm_noaffine` is LayerNorm without gamma and "
           "beta. Throughput counts two reads and one write of the tensor (3 x its bytes) per call. "
           f"Ratios are against `{BWD_FLOOR}` (y = a*x + b*z, a plain loop reading two tensors and writing "
           "one) of the same run, shape, type and size. The peers' layer-norm backwards read the mean and "
           "rstd (variance) a training forward saved; normkit recomputes its statistics from x, and "
           "`normkit_saved` reads those its forward saved (normkit::forward, untimed). torch's "
           "layer norm and autograd backwards allocate their results; oneDNN and torch's softmax "
           "backwards write into dx.", ""]
    for mib in sizes:
        for typ in TYPES:
            rows = []
            for op in BWD_OPS:
                for ours in BWD_OURS:
                    cells = []
                    for layout, cols in SHAPES:
                        key = (ours, op + BACKWARD, typ, mib, layout, cols)
                        if key in gbs:
                            ratio = r_floor.get(key)
                            cells.append(f"{gbs[key] / 1e9:.1f} ({ratio:.2f})" if ratio else f"{gbs[key] / 1e9:.1f}")
                        else:
                            cells.append("")
                    if any(cells):
                        rows.append([op if ours == "normkit" else f"{op}, saved statistics"] + cells)
            if not rows:
                continue
            floor_cells = []
            for layout, cols in SHAPES:
                v = gbs.get((BWD_FLOOR, "floor", typ, mib, layout, cols))
                floor_cells.append(f"{v / 1e9:.1f}" if v else "")
            out.append(f"### normkit backward, {typ}, {fmt_mib(mib)} MiB: GB/s (ratio to {BWD_FLOOR})")
            out.append("")
            out.append(table(["op"] + SHAPE_LABELS, rows + [[f"*{BWD_FLOOR} GB/s*"] + floor_cells]))
            out.append("")

            rows = []
            for op in BWD_OPS:
                for ours in BWD_OURS:
                    for peer in BWD_PEERS:
                        cells = []
                        for layout, cols in SHAPES:
                            case = (op + BACKWARD, typ, mib, layout, cols)
                            vals = [bps / results[(k[0], peer) + case] for k, bps in results.items()
                                    if k[1] == ours and k[2:] == case and (k[0], peer) + case in results]
                            cells.append(f"{vals[0]:.2f}" if vals else "")
                        if any(cells):
                            label = op if ours == "normkit" else f"{op} (saved statistics)"
                            rows.append([f"{label} vs {peer}"] + cells)
            if rows:
                out.append(f"### normkit backward vs the peers, {typ}, {fmt_mib(mib)} MiB: "
                           "normkit's throughput over the peer's (above 1: normkit faster)")
                out.append("")
                out.append(table(["op vs peer"] + SHAPE_LABELS, rows))
                out.append("")

    out += against_peers(r_floor, sizes, BWD_OPS, BACKWARD, BWD_OURS, BWD_PEERS, BWD_FLOOR,
                         {"normkit_saved": ", saved statistics"})

    for mib in sizes:
        impls = [i for i in BWD_IMPLS if any(k[0] == i and k[3] == mib for k in r_floor)]
        if not impls:
            continue
        rows = []
        for op in BWD_OPS + ["all ops"]:
            cells = []
            for impl in impls:
                vals = [v for k, v in r_floor.items() if k[0] == impl and k[3] == mib
                        and (op == "all ops" or k[1] == op + BACKWARD)]
                g = geomean(vals)
                cells.append(f"{g:.2f} ({len(vals)})" if g else "")
            if any(cells):
                rows.append([op if op != "all ops" else "**all ops**"] + cells)
        out.append(f"### Backward summary, {fmt_mib(mib)} MiB: geometric-mean ratio to {BWD_FLOOR} "
                   "(number of shape x type cases)")
        out.append("")
        out.append(table(["op"] + impls, rows))
        out.append("")
    return out


PEER_TAGS = {"torch": "t", "onednn": "o", "eigen_naive": "e"}


def against_peers(r_floor, sizes, ops, suffix, ours, peers, floor, labels):
    """Per size and type: each of `ours` per op and shape as its ratio to `floor`, the faster
    peer's ratio beside it (t torch, o onednn, e eigen_naive; bold where that peer is faster),
    and the geometric mean over the four contiguous row lengths for ours and for the faster
    peer of each row length. The README's tables are these. labels[impl]: a row's label suffix."""
    out = []
    rows_only = [(layout, cols) for layout, cols in SHAPES if layout == "rowmajor"]
    for mib in sizes:
        for typ in TYPES:
            rows = []
            for op in ops:
                def peer_best(layout, cols):
                    vals = [(r_floor[(peer, op + suffix, typ, mib, layout, cols)], peer) for peer in peers
                            if (peer, op + suffix, typ, mib, layout, cols) in r_floor]
                    return max(vals) if vals else None
                for impl in ours:
                    cells = []
                    for layout, cols in SHAPES:
                        mine = r_floor.get((impl, op + suffix, typ, mib, layout, cols))
                        peer = peer_best(layout, cols)
                        if mine is None:
                            cells.append("")
                        elif peer is None:
                            cells.append(f"{mine:.2f}")
                        else:
                            text = f"{mine:.2f}"
                            cells.append((f"**{text}**" if peer[0] > mine else text) +
                                         f" ({PEER_TAGS[peer[1]]}{peer[0]:.2f})")
                    if not any(cells):
                        continue
                    mine_rows = [r_floor.get((impl, op + suffix, typ, mib, l, c)) for l, c in rows_only]
                    peer_rows = [peer_best(l, c) for l, c in rows_only]
                    g = geomean(mine_rows) if all(mine_rows) else None
                    gp = geomean([v[0] for v in peer_rows]) if all(peer_rows) else None
                    cells.append((f"{g:.2f}" if g else "") + (f" ({gp:.2f})" if gp else ""))
                    rows.append([op + labels.get(impl, "")] + cells)
            if rows:
                out.append(f"### {' / '.join(ours)} against the faster peer, {typ}, {fmt_mib(mib)} MiB: ratio to "
                           f"{floor} (the faster peer's; t torch, o onednn, e eigen_naive; bold: that peer is faster)")
                out.append("")
                out.append(table(["op"] + SHAPE_LABELS + ["rows 64-32768, geomean"], rows))
                out.append("")
    return out


def plot(results, outdir):
    """One PNG per size: a subplot per op, ratio to floor_scale per shape, a line per impl
    (float solid, double dashed). Returns the file names."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: matplotlib not found, no plots", file=sys.stderr)
        return []
    rat = ratios(results, "floor_scale")
    colors = dict(zip(IMPLS + ["floor_memcpy"], ["C0", "C1", "C2", "C3", "C4", "0.5"]))
    files = []
    for mib in sorted({k[3] for k in rat}):
        rows = (len(OPS) + 4) // 5
        fig, axes = plt.subplots(rows, 5, figsize=(22, 4.25 * rows), sharey=True, squeeze=False)
        for ax, op in zip(axes.flat, OPS):
            for impl in IMPLS + ["floor_memcpy"]:
                for typ, style in (("float", "-"), ("double", "--")):
                    src = "floor" if impl == "floor_memcpy" else op
                    ys = [rat.get((impl, src, typ, mib, layout, cols), float("nan")) for layout, cols in SHAPES]
                    if all(math.isnan(y) for y in ys):
                        continue
                    ax.plot(range(len(SHAPES)), ys, style, marker="o", ms=3, color=colors[impl],
                            label=f"{impl} {typ}")
            ax.axhline(1.0, color="k", lw=0.6)
            ax.set_title(op)
            ax.set_xticks(range(len(SHAPES)))
            ax.set_xticklabels(SHORT_LABELS, rotation=30, fontsize=8)
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        for ax in list(axes.flat)[len(OPS):]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("throughput / floor_scale")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        for ax in axes.flat[1:]:  # ops without a peer have fewer lines: merge the legends
            for h, l in zip(*ax.get_legend_handles_labels()):
                if l not in labels:
                    handles.append(h)
                    labels.append(l)
        fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=9)
        fig.suptitle(f"{fmt_mib(mib)} MiB tensors: ratio to floor_scale (row length, then the strided layouts); "
                     "float solid, double dashed")
        fig.tight_layout(rect=(0, 0.08, 1, 0.96))
        name = f"ratios_{fmt_mib(mib)}MiB.png"
        fig.savefig(os.path.join(outdir, name), dpi=90)
        plt.close(fig)
        files.append(name)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="Google Benchmark JSON output file(s)")
    ap.add_argument("-o", "--outdir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()
    results, errors, contexts = parse(args.json)
    if not results:
        sys.exit("report.py: no benchmark results in " + ", ".join(args.json))
    # Functors of the list without a curated op (normkit alone) join the tables.
    seen = {k[2][:-len(BACKWARD)] if k[2].endswith(BACKWARD) else k[2] for k in results} - {"floor"}
    for op in sorted(seen - set(BWD_OPS)):
        OPS.append(op)
        BWD_OPS.append(op)
    os.makedirs(args.outdir, exist_ok=True)
    forward = {k: v for k, v in results.items() if not is_backward(k)}
    plots = [] if args.no_plots or not forward else plot(forward, args.outdir)
    md = report(results, errors, contexts, plots)
    with open(os.path.join(args.outdir, "report.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
