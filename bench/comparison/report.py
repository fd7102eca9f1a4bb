"""The Markdown tables, PNG plots and goal ratios of bench/compare.py."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGET_RECALL = 0.95
# The data set whose results give the goal ratios.
GOAL_DATASET = "fashion-l2"


def mebibytes(value):
    if value is None:
        return "-"
    if value < 10 * 2**20:
        return f"{value / 2**20:.1f} MiB"
    return f"{value / 2**20:,.0f} MiB"


def rate(value):
    return "-" if value is None else f"{value:,.0f}"


def first_reaching(result, target=TARGET_RECALL):
    """Return the first sweep entry with recall@10 >= target, or None."""
    for entry in result.get("sweep") or []:
        if entry["recall"] >= target:
            return entry
    return None


def short_index(index):
    """Return an adapter's index description up to its first semicolon.

    The Node adapters add how they sweep and measure after a semicolon;
    the tables show the index alone and list the whole text below them.
    """
    return index.split(";", 1)[0]


def markdown_dataset(dataset, results, plot_names):
    lines = [f"## {dataset['title']}", "",
             f"{dataset['base_count']:,} base vectors of {dataset['dim']} "
             f"dimensions, {dataset['query_count']:,} queries, top 10. "
             f"Source: {dataset['source']}.", "",
             "| system | index | param | recall@10 | q/s single | q/s batch "
             "| build/ingest s | peak RSS | disk |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        if result.get("error"):
            lines.append(f"| {result['system']} | failed: "
                         f"{one_line(result['error'])} | | | | | | | |")
            continue
        for entry in result["sweep"]:
            lines.append(
                f"| {result['system']} | {short_index(result['index'])} | "
                f"{entry['param']} | {entry['recall']:.4f} | "
                f"{rate(entry['qps'])} | {rate(entry.get('batch_qps'))} | "
                f"{result['ingest_seconds']:.1f} | "
                f"{mebibytes(result['peak_rss_bytes'])} | "
                f"{mebibytes(result['disk_bytes'])} |")

    notes = [f"- {result['system']}: {result['index']}"
             for result in results
             if not result.get("error") and result["index"] !=
             short_index(result["index"])]
    if notes:
        lines += [""] + notes

    latency_rows = [(result, row) for result in results
                    if not result.get("error")
                    for row in result.get("latency") or []]
    if latency_rows:
        lines += ["", "| system | param | clients | p50 ms | p99 ms | "
                  "q/s |", "| --- | --- | --- | --- | --- | --- |"]
        for result, row in latency_rows:
            param = (f"ef_search {row['ef_search']}" if "ef_search" in row
                     else "-")
            lines.append(f"| {result['system']} | {param} | "
                         f"{row['clients']} | {row['p50_ms']:.2f} | "
                         f"{row['p99_ms']:.2f} | {rate(row['qps'])} |")
    lines.append("")
    for name in plot_names:
        lines.append(f"![{name}]({name})")
    lines.append("")
    return lines


def one_line(text):
    return " ".join(str(text).split()).replace("|", "/")[:300]


def plot_recall(dataset, results, path):
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result in results:
        if result.get("error") or not result.get("sweep"):
            continue
        # The index's kind without its parameters keeps the legend short.
        label = f"{result['system']} {result['index'].split(',')[0]}"
        recalls = [entry["recall"] for entry in result["sweep"]]
        line, = axes.plot(recalls, [entry["qps"] for entry in
                                    result["sweep"]],
                          marker="o", label=f"{label}, single")
        if all(entry.get("batch_qps") for entry in result["sweep"]):
            axes.plot(recalls, [entry["batch_qps"] for entry in
                                result["sweep"]],
                      marker="s", linestyle="--", color=line.get_color(),
                      label=f"{label}, batch")
    axes.set_yscale("log")
    axes.set_xlabel("recall@10")
    axes.set_ylabel("queries per second (log)")
    axes.set_title(f"{dataset['title']}: {dataset['base_count']:,} vectors")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_latency(dataset, results, path):
    """Plot p50 and p99 latency against clients; return False if no data."""
    rows = [(result, result["latency"]) for result in results
            if not result.get("error") and result.get("latency")]
    if not rows:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result, latency in rows:
        clients = [row["clients"] for row in latency]
        line, = axes.plot(clients, [row["p50_ms"] for row in latency],
                          marker="o", label=f"{result['system']} p50")
        axes.plot(clients, [row["p99_ms"] for row in latency], marker="s",
                  linestyle="--", color=line.get_color(),
                  label=f"{result['system']} p99")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks([row["clients"] for row in rows[0][1]])
    axes.set_xticklabels([str(row["clients"]) for row in rows[0][1]])
    axes.set_xlabel("concurrent clients")
    axes.set_ylabel("latency, ms (log)")
    axes.set_title(f"{dataset['title']}: Search latency")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def goal_ratios(results):
    """Return (ratio name, value or None, goal, note) for the goal data set.

    Each system is taken at the first ef_search of its own sweep that
    reaches recall@10 0.95, because the peers' parameters need not mean
    the same as HNSW's.
    """
    by_system = {result["system"]: result for result in results}

    def entry(system):
        result = by_system.get(system)
        if result is None:
            return None, f"{system} was not run"
        if result.get("error"):
            return None, f"{system} failed"
        found = first_reaching(result)
        if found is None:
            return None, f"{system} never reached recall@10 {TARGET_RECALL}"
        return found, f"{system} at {found['param']}"

    def ratio(name, goal, system, field="qps", other_field=None,
              me="vecdb"):
        mine, my_note = entry(me)
        theirs, their_note = entry(system)
        note = f"{my_note}; {their_note}"
        if mine is None or theirs is None or not theirs.get(
                other_field or field):
            return name, None, goal, note
        return (name, mine[field] / theirs[other_field or field], goal,
                note)

    rows = [ratio("vecdb SearchBatch q/s / FAISS batch q/s", ">= 0.9",
                  "FAISS", field="batch_qps")]
    clients = [name for name in ("vecdb", "vecdb (C++ client)")
               if name in by_system]
    for me in clients or ["vecdb"]:
        rows += [
            ratio(f"{me} single q/s / FAISS single q/s", ">= 0.7", "FAISS",
                  me=me),
            ratio(f"{me} single q/s / Chroma q/s", ">= 4", "Chroma", me=me),
            ratio(f"{me} single q/s / LanceDB q/s", ">= 4", "LanceDB",
                  me=me),
            ratio(f"{me} single q/s / hnswlib single q/s", ">= 1",
                  "hnswlib", me=me),
        ]
        latency = [row for row in (by_system.get(me) or {}).get("latency")
                   or [] if row["clients"] == 16]
        if latency:
            rows.append((f"{me} p99 / p50 with 16 clients",
                         latency[0]["p99_ms"] / latency[0]["p50_ms"],
                         "<= 4", f"ef_search {latency[0].get('ef_search')}"))
        else:
            rows.append((f"{me} p99 / p50 with 16 clients", None, "<= 4",
                         f"no {me} latency with 16 clients"))
    vecdb = by_system.get("vecdb")
    faiss = by_system.get("FAISS")
    if (vecdb and faiss and not vecdb.get("error")
            and not faiss.get("error")):
        rows.append(("vecdb HNSW build rate / FAISS build rate",
                     faiss["ingest_seconds"] / vecdb["ingest_seconds"],
                     ">= 2", "points per second from the first write until "
                     "every point is in the graph"))
    else:
        rows.append(("vecdb HNSW build rate / FAISS build rate", None,
                     ">= 2", "vecdb or FAISS missing or failed"))
    return rows


def goal_lines(rows):
    lines = ["| ratio | measured | goal | taken at |",
             "| --- | --- | --- | --- |"]
    for name, value, goal, note in rows:
        shown = "n/a" if value is None else f"{value:.2f}"
        lines.append(f"| {name} | {shown} | {goal} | {note} |")
    return lines


def write(path, header, datasets, results_by_dataset):
    """Write the Markdown file and its plots beside it; return the goals."""
    folder = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    lines = list(header)
    goals = None
    if GOAL_DATASET in results_by_dataset:
        goals = goal_ratios(results_by_dataset[GOAL_DATASET])
        lines += ["## Goal ratios on Fashion-MNIST, L2", "",
                  "Each system is taken at the first ef_search of its sweep "
                  f"that reaches recall@10 {TARGET_RECALL}.", ""]
        lines += goal_lines(goals) + [""]
    for dataset in datasets:
        results = results_by_dataset[dataset["name"]]
        plots = [f"{stem}-{dataset['name']}-recall.png"]
        plot_recall(dataset, results, os.path.join(folder, plots[0]))
        latency_name = f"{stem}-{dataset['name']}-latency.png"
        if plot_latency(dataset, results, os.path.join(folder,
                                                       latency_name)):
            plots.append(latency_name)
        lines += markdown_dataset(dataset, results, plots)
    with open(path, "w") as file:
        file.write("\n".join(lines).rstrip() + "\n")
    return goals
