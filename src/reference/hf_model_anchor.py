"""Same-call peer anchor for `jnext bench model`: Hugging Face transformers running a checkpoint's model class in bf16
on the GPU host — prefill throughput (one sequence, logits of the last token only) and decode throughput (greedy
`generate`, per-step time from the difference of two generation lengths). Any family transformers knows (Qwen3-Next,
Qwen3.5 dense and MoE): the class comes from the checkpoint's config.json.

    python3 src/reference/hf_model_anchor.py CHECKPOINT_DIR [--layers N] [--random-init] \
        [--prefill 512,4096] [--decode-batch 1,64] [--device cuda] [--out FILE.json]

--random-init builds the model from config.json alone with random weights on the device (no weight files read: the
full-depth geometries need no disk; timing does not depend on the values), --layers N changes the depth (the layer
pattern follows full_attention_interval). Written for jnext; no code is taken from elsewhere.
"""
import argparse
import json
import os
import sys
import time

import torch


def median_ms(fn, device, iters, warm):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def text_config(cfg):
    return getattr(cfg, "text_config", None) or cfg


def set_depth(cfg, layers):
    t = text_config(cfg)
    interval = getattr(t, "full_attention_interval", 4) or 4
    t.num_hidden_layers = layers
    t.layer_types = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(layers)]
    if getattr(t, "mlp_only_layers", None):
        t.mlp_only_layers = [i for i in t.mlp_only_layers if i < layers]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--random-init", action="store_true")
    ap.add_argument("--prefill", default="512,4096")
    ap.add_argument("--decode-batch", default="1,64")
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=128, help="prompt tokens of each decoding sequence")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out")
    a = ap.parse_args(argv)

    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    dev = torch.device(a.device)
    cfg = AutoConfig.from_pretrained(a.checkpoint)
    if a.layers:
        set_depth(cfg, a.layers)
    torch.manual_seed(0)
    t0 = time.time()
    if a.random_init or a.layers:
        with torch.device(dev):
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    else:
        model = AutoModelForCausalLM.from_pretrained(a.checkpoint, dtype=torch.bfloat16).to(dev)
    model.eval()
    t = text_config(model.config)
    vocab = t.vocab_size
    res = {
        "anchor": "transformers " + transformers.__version__ + " " + type(model).__name__ + " bf16",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "checkpoint": os.path.abspath(a.checkpoint),
        "layers": t.num_hidden_layers,
        "weights": "random (from config.json)" if (a.random_init or a.layers) else "the checkpoint's",
        "params_B": sum(p.numel() for p in model.parameters()) / 1e9,
        "load_s": time.time() - t0,
    }
    try:
        from transformers.utils import import_utils
        res["fla_fast_path"] = bool(getattr(import_utils, "is_flash_linear_attention_available", lambda: False)())
    except Exception:
        res["fla_fast_path"] = None
    print(json.dumps(res), flush=True)
    gen = torch.Generator(device="cpu").manual_seed(1)
    with torch.no_grad():
        for n in [int(x) for x in a.prefill.split(",") if x]:
            ids = torch.randint(0, vocab, (1, n), generator=gen).to(dev)
            ms = median_ms(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1), dev, a.iters, 1)
            res[f"hf_prefill_{n}_ms"] = ms
            res[f"hf_prefill_{n}_tok_per_s"] = n / ms * 1e3
            print(f"prefill {n}: {ms:.1f} ms, {n / ms * 1e3:.0f} tok/s", flush=True)
        for b in [int(x) for x in a.decode_batch.split(",") if x]:
            ids = torch.randint(0, vocab, (b, a.prompt), generator=gen).to(dev)

            def run(new):
                return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                                      min_new_tokens=new, do_sample=False)

            short = median_ms(lambda: run(1), dev, max(1, a.iters // 2), 1)
            long_ = median_ms(lambda: run(1 + a.decode_steps), dev, max(1, a.iters // 2), 0)
            step = (long_ - short) / a.decode_steps
            res[f"hf_decode_b{b}_ms_per_step"] = step
            res[f"hf_decode_b{b}_tok_per_s"] = b / step * 1e3
            print(f"decode batch {b}: {step:.2f} ms a step, {b / step * 1e3:.0f} tok/s", flush=True)
    text = json.dumps(res, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
