#!/usr/bin/env python3
"""Parity oracle for the Qwen3.5 / Qwen3.6 families: checkpoints written by jnext's `synth`, logits by transformers.

Needs the jnext jar (`mvn -B -ntp -q package -DskipTests -Pcpu-only`) and Python with torch (CPU), transformers 5.17,
numpy and safetensors; no network, no GPU:

    python3 src/reference/qwen3_5_fixtures.py --out runtime/core/src/test/resources/qwen35-fixtures [--only NAME,...]

For every fixture below it runs `src/bin/jnext synth ARGS --out WORK/NAME`, loads that folder with transformers
(Qwen3_5ForCausalLM / Qwen3_5MoeForCausalLM for a text-only config.json, Qwen3_5ForConditionalGeneration /
Qwen3_5MoeForConditionalGeneration for the multimodal one; fp32, eager attention, CPU) and writes into OUT/NAME:

    ids.npy                     int32 [T]        random token ids
    logits_full.npy             float32 [T, V]   one forward over ids without a cache
    logits_decode_hf.npy        float32 [S, V]   prefill ids[:T-S] with the cache, then S single-token steps
    logits_continuation_hf.npy  float32 [M, V]   prefill ids[:N], then ONE call of ids[N:N+M] with the cache

and OUT/manifest.json: per fixture the synth arguments, the exact config.json jnext wrote, a SHA-256 over every tensor
(name, dtype, shape, bytes: the Java test regenerates the checkpoint with SyntheticCheckpoint and checks it first), the
schedule, HF's own consistency numbers (its cached schedules vs logits_full; the multimodal model vs the text-only
class on the same folder), versions and the machine. Only these small arrays are committed, not the checkpoints.

The multimodal configs jnext writes carry no vision_config; transformers would build its default 27-block vision tower
(random, unused by text) for them, so this script shrinks it to one block first: text-only input never reaches it.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Full schedule for the toy models (as the Qwen3-Next fixtures): > 2 chunks of 64, 10 decodes, a continuation across a
# chunk boundary. The real-geometry ("shape") fixtures use a shorter one: one chunk boundary, a few decodes.
FULL = dict(T=160, S=10, N=70, M=80)
SHAPE = dict(T=72, S=6, N=40, M=32)

TOY = ["--logit-scale", "4", "--seed", "7"]
SHAPE_ARGS = ["--layers", "4", "--vocab-size", "1024", "--logit-scale", "4", "--dtype", "bf16"]

FIXTURES = [
    dict(name="q35-dense-wrapper",
         description="Qwen3.5 dense toy (Hv = 2 Hk, dk 16 != dv 24, GQA 2:1, head_dim 32): the released multimodal "
                     "layout (qwen3_5 config.json with text_config, model.language_model.*), F32",
         synth=["--preset", "qwen3.5-tiny", "--multimodal", "--dtype", "f32"] + TOY,
         schedule=FULL, heavy=False),
    dict(name="q35-dense-text-bf16",
         description="Qwen3.5 dense toy, text-only qwen3_5_text config.json (model.*), untied, BF16 on disk "
                     "(reference = transformers fp32 on the upcast weights), 6 layers (a second group begins)",
         synth=["--preset", "qwen3.5-tiny", "--layers", "6", "--dtype", "bf16"] + TOY,
         schedule=FULL, heavy=False),
    dict(name="q35-moe-text-fused",
         description="Qwen3.5 MoE toy (8 experts, top-2, shared expert, top-k always renormalised), text-only "
                     "qwen3_5_moe_text config.json, fused experts (gate_up_proj [E, 2I, H]), F32",
         synth=["--preset", "qwen3.5-moe-tiny", "--experts-layout", "fused", "--dtype", "f32"] + TOY,
         schedule=FULL, heavy=False),
    dict(name="q35-moe-wrapper-hub",
         description="Qwen3.5 MoE toy in the multimodal layout (qwen3_5_moe), per-expert tensors "
                     "(experts.{e}.gate_proj ...), BF16",
         synth=["--preset", "qwen3.5-moe-tiny", "--experts-layout", "hub", "--multimodal", "--dtype", "bf16"] + TOY,
         schedule=FULL, heavy=False),
    dict(name="q35-0.8b-shape",
         description="the Qwen3.5-0.8B per-layer geometry (hidden 1024, MLP 3584, 8 / 2 heads x 256, DeltaNet 16 / 16 "
                     "heads x 128) with 4 layers (3 DeltaNet + 1 attention) and a 1024-token vocabulary, BF16, in the "
                     "released multimodal layout with tied embeddings (the wrapper's tie_word_embeddings)",
         synth=["--preset", "qwen3.5-0.8b", "--multimodal"] + SHAPE_ARGS + ["--seed", "8"],
         schedule=SHAPE, heavy=False),
    dict(name="q35-35b-a3b-shape",
         description="the Qwen3.5-35B-A3B / Qwen3.6-35B-A3B per-layer geometry (hidden 2048, 16 / 2 heads x 256, "
                     "DeltaNet 16 / 32 heads x 128, experts of 512, top-8, shared expert 512) with 4 layers, 16 "
                     "experts instead of 256 and a 1024-token vocabulary, fused experts, multimodal layout, BF16",
         synth=["--preset", "qwen3.5-35b-a3b", "--experts", "16", "--experts-layout", "fused", "--multimodal"]
               + SHAPE_ARGS + ["--seed", "9"],
         schedule=SHAPE, heavy=False),
    dict(name="q35-9b-shape",
         description="the Qwen3.5-9B per-layer geometry (hidden 4096, MLP 12288, 16 / 4 heads x 256, DeltaNet 16 / 32 "
                     "heads x 128) with 4 layers and a 1024-token vocabulary, BF16 (opt-in test: about 1.7 GB)",
         synth=["--preset", "qwen3.5-9b"] + SHAPE_ARGS + ["--seed", "10"],
         schedule=SHAPE, heavy=True),
    dict(name="q35-27b-shape",
         description="the Qwen3.5-27B per-layer geometry (hidden 5120, MLP 17408, 24 / 4 heads x 256, DeltaNet 16 / 48 "
                     "heads x 128) with 4 layers and a 1024-token vocabulary, BF16 (opt-in test: about 3 GB)",
         synth=["--preset", "qwen3.5-27b"] + SHAPE_ARGS + ["--seed", "11"],
         schedule=SHAPE, heavy=True),
]


def log(msg):
    print(f"[qwen35-fixtures {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fail(msg):
    print(f"[qwen35-fixtures] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def tensor_digest(ckpt):
    """SHA-256 over every tensor sorted by name: name, NUL, dtype, NUL, shape (little-endian int64s), raw bytes.
    Reads the safetensors headers directly, so the bytes hashed are the bytes on disk."""
    tensors = {}
    for fn in sorted(os.listdir(ckpt)):
        if not fn.endswith(".safetensors"):
            continue
        path = os.path.join(ckpt, fn)
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        for k, v in header.items():
            if k != "__metadata__":
                tensors[k] = (path, 8 + n, v)
    h = hashlib.sha256()
    for name in sorted(tensors):
        path, base, v = tensors[name]
        begin, end = v["data_offsets"]
        with open(path, "rb") as f:
            f.seek(base + begin)
            data = f.read(end - begin)
        h.update(name.encode("utf-8") + b"\0" + v["dtype"].encode("ascii") + b"\0")
        h.update(np.asarray(v["shape"], dtype="<i8").tobytes())
        h.update(data)
    return h.hexdigest(), len(tensors)


def load(ckpt, text_only=False):
    import transformers as tf
    with open(os.path.join(ckpt, "config.json")) as f:
        mt = json.load(f)["model_type"]
    wrapper = mt in ("qwen3_5", "qwen3_5_moe")
    moe = mt.startswith("qwen3_5_moe")
    kw = dict(dtype=torch.float32, attn_implementation="eager")
    if wrapper and not text_only:
        cls = tf.Qwen3_5MoeForConditionalGeneration if moe else tf.Qwen3_5ForConditionalGeneration
        cfg = tf.AutoConfig.from_pretrained(ckpt)
        v = cfg.vision_config   # no vision tower in the checkpoint: a one-block one instead of the default 27
        v.depth, v.hidden_size, v.intermediate_size, v.num_heads = 1, 32, 32, 2
        v.out_hidden_size = cfg.text_config.hidden_size
        kw["config"] = cfg
    else:
        cls = tf.Qwen3_5MoeForCausalLM if moe else tf.Qwen3_5ForCausalLM
    model, info = cls.from_pretrained(ckpt, output_loading_info=True, **kw)
    missing = [k for k in info["missing_keys"] if not k.startswith("model.visual.")]
    if missing or info["unexpected_keys"] or info["mismatched_keys"]:
        fail(f"{ckpt}: transformers did not load every text weight: missing {missing[:5]}, unexpected "
             f"{sorted(info['unexpected_keys'])[:5]}, mismatched {list(info['mismatched_keys'])[:5]}")
    return model.eval(), cls.__name__


def max_rel(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        fail(f"shape mismatch {a.shape} vs {ref.shape}")
    return float(np.max(np.abs(a - ref)) / max(1e-30, np.max(np.abs(ref))))


def run_cases(model, ids, sched):
    t, s, n, m = sched["T"], sched["S"], sched["N"], sched["M"]
    res, notes = {}, {}
    with torch.no_grad():
        full = model(input_ids=ids[None, :t], use_cache=False).logits[0].float().numpy()
        res["logits_full"] = full
        out = model(input_ids=ids[None, :t - s], use_cache=True)
        notes["prefill_vs_full"] = max_rel(out.logits[0].float().numpy(), full[:t - s])
        cache, steps = out.past_key_values, []
        for i in range(t - s, t):
            out = model(input_ids=ids[None, i:i + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(out.logits[0, -1].float().numpy())
        res["logits_decode_hf"] = np.stack(steps)
        notes["decode_hf_vs_full"] = max_rel(res["logits_decode_hf"], full[t - s:t])
        out = model(input_ids=ids[None, :n], use_cache=True)
        out = model(input_ids=ids[None, n:n + m], past_key_values=out.past_key_values, use_cache=True)
        res["logits_continuation_hf"] = out.logits[0].float().numpy()
        notes["continuation_hf_vs_full"] = max_rel(res["logits_continuation_hf"], full[n:n + m])
    for k, v in res.items():
        if not np.all(np.isfinite(v)):
            fail(f"non-finite values in {k}")
    return res, notes


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "system": platform.platform(), "gpu": "none (torch CPU build)"}


def build(spec, jnext, work, out):
    name = spec["name"]
    ckpt = os.path.join(work, name)
    shutil.rmtree(ckpt, ignore_errors=True)
    log(f"--- {name}: {spec['description']}")
    args = [jnext, "synth"] + spec["synth"] + ["--out", ckpt]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(args)}: {r.stdout}{r.stderr}")
    log(r.stdout.strip())
    with open(os.path.join(ckpt, "config.json")) as f:
        config_text = f.read()
    digest, count = tensor_digest(ckpt)
    model, cls = load(ckpt)
    vocab = model.config.get_text_config().vocab_size
    sched = spec["schedule"]
    g = torch.Generator().manual_seed(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    ids = torch.randint(0, vocab, (sched["T"],), generator=g)
    t0 = time.time()
    res, notes = run_cases(model, ids, sched)
    log(f"{name}: {cls} in {time.time() - t0:.1f} s; HF self-consistency {notes}")
    if cls.endswith("ForConditionalGeneration"):   # the same folder through the text-only class (PrefixChange)
        text, tcls = load(ckpt, text_only=True)
        with torch.no_grad():
            lg = text(input_ids=ids[None, :], use_cache=False).logits[0].float().numpy()
        notes[f"{tcls}_vs_{cls}"] = max_rel(lg, res["logits_full"])
        del text
    del model
    fdir = os.path.join(out, name)
    os.makedirs(fdir, exist_ok=True)
    np.save(os.path.join(fdir, "ids.npy"), ids.numpy().astype(np.int32))
    for k, v in res.items():
        np.save(os.path.join(fdir, k + ".npy"), np.ascontiguousarray(v, dtype=np.float32))
    shutil.rmtree(ckpt, ignore_errors=True)
    return {
        "name": name, "description": spec["description"], "heavy": spec["heavy"],
        "synth_args": spec["synth"], "config_json": config_text, "tensors": count, "tensor_sha256": digest,
        "reference_class": cls, "schedule": sched,
        "max_abs_logit_full": float(np.max(np.abs(res["logits_full"]))),
        "hf_consistency_max_rel": notes,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="fixture folder (runtime/core/src/test/resources/qwen35-fixtures)")
    ap.add_argument("--jnext", default=os.path.join(ROOT, "src", "bin", "jnext"), help="the jnext launcher")
    ap.add_argument("--only", default="", help="comma-separated fixture names (default: all); others keep their entry")
    ap.add_argument("--work", default=None, help="scratch folder for the checkpoints (default: a temporary one)")
    args = ap.parse_args()
    import transformers
    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}")
    if transformers.__version__ != "5.17.0":
        log(f"WARNING: the committed goldens are transformers 5.17.0's; this is {transformers.__version__}")
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - {f["name"] for f in FIXTURES}
    if unknown:
        fail(f"unknown fixtures {sorted(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    work = args.work or tempfile.mkdtemp(prefix="qwen35-fixtures-")
    manifest_path = os.path.join(args.out, "manifest.json")
    old = {}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = {e["name"]: e for e in json.load(f)["fixtures"]}
    entries = []
    for spec in FIXTURES:
        if only and spec["name"] not in only:
            if spec["name"] in old:
                entries.append(old[spec["name"]])
            continue
        entries.append(build(spec, args.jnext, work, args.out))
    manifest = {
        "generator": "src/reference/qwen3_5_fixtures.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "machine": machine(),
        "reference": "transformers Qwen3_5*/Qwen3_5Moe* from_pretrained(dir, dtype=torch.float32, "
                     "attn_implementation='eager') on the CPU, over checkpoints written by `jnext synth`",
        "fixtures": entries,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    log(f"wrote {manifest_path}")


if __name__ == "__main__":
    main()
