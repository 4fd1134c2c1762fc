"""The results of a ``fastnn bench`` run as a text table, a Markdown table and JSON.

Per cell: milliseconds per call of every engine, fastnn's speed-up against each peer and against the fastest
peer of that cell (peer time / fastnn time, > 1 means fastnn is faster), fastnn's GFLOP/s and fraction of the
FMA peak, and fastnn's time over the yardstick's (what the regression gate compares).
"""
import json

from .peers import LABELS, PEERS

_MISSING = "-"


def _engines(rows):
    present = {engine for row in rows for engine in row["ms"]}
    return ["fastnn"] + [peer for peer in PEERS if peer in present]


def _columns(rows):
    """(header, [cells per row]) with the engines that appear in some row."""
    engines = _engines(rows)
    peers = engines[1:]
    header = ["workload", "batch", "phase"] + [f"{LABELS[e]} ms" for e in engines]
    header += [f"x {LABELS[p]}" for p in peers] + (["x best"] if peers else [])
    header += ["GFLOP/s", "% peak", "/ yardstick"]
    table = []
    for row in rows:
        cells = [row["workload"], str(row["batch"]), row["phase"]]
        cells += [f"{row['ms'][e]:.4g}" if e in row["ms"] else _MISSING for e in engines]
        cells += [f"{row['speedup'][p]:.2f}" if p in row["speedup"] else _MISSING for p in peers]
        if peers:
            best = row.get("best_peer")
            cells.append(f"{row['speedup_vs_best']:.2f} ({LABELS[best]})" if best else _MISSING)
        fraction = row.get("peak_fraction")
        cells += [f"{row['gflops']:.1f}", f"{100 * fraction:.1f}" if fraction is not None else _MISSING,
                  f"{row['yardstick_ratio']:.4g}"]
        table.append(cells)
    return header, table


def _notes(unavailable, peer_status):
    notes = [f"{name}: not run ({reason})" for name, reason in unavailable.items()]
    notes += [f"{LABELS[peer]}: not installed ({why})" for peer, (ok, why) in (peer_status or {}).items() if not ok]
    return notes


def text_table(rows, unavailable=None, peer_status=None):
    """The rows as an aligned text table, with a line per workload or peer that could not run."""
    header, table = _columns(rows)
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    return "\n".join(lines + _notes(unavailable or {}, peer_status))


def markdown_table(rows, unavailable=None, peer_status=None, environment=None):
    """The rows as a Markdown table, preceded by the environment and followed by notes."""
    header, table = _columns(rows)
    lines = []
    if environment:
        lines += [", ".join(f"{k}: {v}" for k, v in environment.items()), ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    notes = _notes(unavailable or {}, peer_status)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_json(path, rows, unavailable, peer_status, environment):
    with open(path, "w") as f:
        json.dump({"environment": environment, "unavailable_workloads": unavailable,
                   "peers": {p: {"available": ok, "detail": why} for p, (ok, why) in (peer_status or {}).items()},
                   "cells": rows}, f, indent=2)
        f.write("\n")
