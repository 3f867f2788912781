#!/usr/bin/env python3
"""Truth and peer logits for the CUDA forward-pass parity tests (CudaForwardParityGpuTest), run on the GPU host.

For each checkpoint folder given (written by `jnext synth` in the same device call), with B random sequences of P
token ids (seeded, the same for every run):

    <case>/ids.npy              int32   [B, P]
    <case>/truth.npy            float32 [B, P, V]   transformers in fp32 (on the GPU, TF32 off) on the checkpoint's
                                                    bf16 weights: one full forward, no cache (the truth)
    <case>/hf_bf16_prefill.npy  float32 [B, P, V]   transformers in bf16: the same full forward
    <case>/hf_bf16_decode.npy   float32 [B, P-N, V] transformers in bf16: prefill ids[:, :N] with the cache, then one
                                                    token per step; rows are positions N .. P-1
    <case>/meta.json            N, versions, timings, transformers' own figures (computed again by the Java test)

    python3 src/reference/cuda_parity.py --out DIR CASE_NAME=CHECKPOINT_DIR ...
    python3 src/reference/cuda_parity.py --out DIR --b 1 --p 520 --n 504 --seed 7 CASE=DIR   # other shapes (the sweep)

--device cpu runs the same on the CPU (small checkpoints: it checks this script where no GPU is).

A fine-grained FP8 checkpoint (config.json quantization_config, quant_method "fp8") is the case issue 21 asks for: the
truth is transformers in fp32 on its dequantized weights (a twin written here, each F8_E4M3 tensor times its
128 x 128 block scales, as F32, without quantization_config), and the peer (the hf_bf16_* files) is transformers running
the FP8 checkpoint itself when its fine-grained FP8 integration can load (it needs `accelerate` and the `kernels`
package), else transformers in bf16 on the twin; meta.json says which ("peer"). jnext runs the FP8 checkpoint ("checkpoint").
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

B, P, N = 2, 400, 144  # defaults: 2 x 400 prefill positions, 2 x 256 decode positions


def log(msg):
    print(f"[cuda_parity {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def kl_rows(p_logits, q_logits):
    """mean over rows of KL(softmax(p) || softmax(q)), float64, on the GPU."""
    p = torch.log_softmax(p_logits.double(), -1)
    q = torch.log_softmax(q_logits.double(), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def top1(p_logits, q_logits):
    return float((p_logits.argmax(-1) == q_logits.argmax(-1)).double().mean())


def dequantized_twin(ckpt, out):
    """The FP8 checkpoint's weights dequantized (w = e4m3 * scale_inv of its 128 x 128 block) as one F32 safetensors file."""
    from safetensors.torch import load_file, save_file
    os.makedirs(out, exist_ok=True)
    tensors = {}
    for f in sorted(os.listdir(ckpt)):
        if f.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(ckpt, f)))
    out_t = {}
    for name, t in tensors.items():
        if name.endswith("_scale_inv") and name[:-len("_scale_inv")] in tensors:
            continue
        if t.dtype == torch.float8_e4m3fn:
            s = tensors[name + "_scale_inv"].float()
            r, c = t.shape[-2], t.shape[-1]
            full = s.repeat_interleave(128, dim=-2).repeat_interleave(128, dim=-1)[..., :r, :c]
            out_t[name] = (t.float() * full).contiguous()
        else:
            out_t[name] = t.contiguous()
    save_file(out_t, os.path.join(out, "model.safetensors"))
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    cfg.pop("quantization_config", None)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
    return out


def run_case(name, ckpt, out_dir, B=B, P=P, N=N, dev="cuda", seed=1234):
    # the checkpoint's own class: Qwen3NextForCausalLM, Qwen3_5ForCausalLM or Qwen3_5MoeForCausalLM (text-only configs)
    from transformers import AutoModelForCausalLM
    import importlib.util
    os.makedirs(out_dir, exist_ok=True)
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    fp8 = (cfg.get("quantization_config") or {}).get("quant_method") == "fp8"
    ref = dequantized_twin(ckpt, os.path.join(out_dir, "twin")) if fp8 else ckpt
    peer = ckpt if fp8 and importlib.util.find_spec("accelerate") is not None else ref
    vocab = cfg["vocab_size"]
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, P), generator=g)
    np.save(os.path.join(out_dir, "ids.npy"), ids.numpy().astype(np.int32))
    meta = {"case": name, "checkpoint": ckpt, "B": B, "P": P, "N": N, "seed": seed, "device": dev, "torch": torch.__version__}
    if fp8:
        meta["truth_checkpoint"] = ref
        meta["peer"] = ("transformers fine-grained FP8 on the FP8 checkpoint" if peer == ckpt else
                        "transformers bf16 on the dequantized weights (its FP8 integration needs accelerate, absent here)")
    import transformers
    meta["transformers"] = transformers.__version__
    meta["model_type"] = cfg.get("model_type")

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    t0 = time.time()
    m32 = AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
    with torch.no_grad():
        truth = m32(ids.to(dev)).logits.float()
    meta["fp32_seconds"] = time.time() - t0
    np.save(os.path.join(out_dir, "truth.npy"), truth.cpu().numpy())
    del m32
    if dev == "cuda":
        torch.cuda.empty_cache()

    t0 = time.time()
    try:
        m16 = AutoModelForCausalLM.from_pretrained(peer, dtype=torch.bfloat16).to(dev).eval()
    except ImportError as e:
        if peer == ref:
            raise
        # transformers' fine-grained FP8 path needs more than accelerate (e.g. the `kernels` package): the peer becomes
        # bf16 on the dequantized weights, and meta.json says why
        print(f"[cuda_parity] {name}: transformers cannot run the FP8 checkpoint ({str(e)[:160]}); peer: bf16 on the twin",
              flush=True)
        peer = ref
        meta["peer"] = "transformers bf16 on the dequantized weights (its FP8 integration failed to load: " + str(e)[:200] + ")"
        m16 = AutoModelForCausalLM.from_pretrained(peer, dtype=torch.bfloat16).to(dev).eval()
    with torch.no_grad():
        pre = m16(ids.to(dev)).logits.float()
        out = m16(ids[:, :N].to(dev), use_cache=True)
        cache = out.past_key_values
        dec = []
        for t in range(N, P):
            out = m16(ids[:, t:t + 1].to(dev), past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            dec.append(out.logits[:, -1].float())
        dec = torch.stack(dec, 1)
    meta["bf16_seconds"] = time.time() - t0
    np.save(os.path.join(out_dir, "hf_bf16_prefill.npy"), pre.cpu().numpy())
    np.save(os.path.join(out_dir, "hf_bf16_decode.npy"), dec.cpu().numpy())
    tv = truth.reshape(-1, vocab)
    meta["hf_bf16_prefill_kl"] = kl_rows(tv, pre.reshape(-1, vocab))
    meta["hf_bf16_prefill_top1"] = top1(tv, pre.reshape(-1, vocab))
    td = truth[:, N:].reshape(-1, vocab)
    meta["hf_bf16_decode_kl"] = kl_rows(td, dec.reshape(-1, vocab))
    meta["hf_bf16_decode_top1"] = top1(td, dec.reshape(-1, vocab))
    meta["hf_bf16_decode_vs_prefill_kl"] = kl_rows(pre[:, N:].reshape(-1, vocab), dec.reshape(-1, vocab))
    pt = torch.softmax(tv.double(), -1)
    meta["truth_entropy_nats"] = float(-(pt * torch.log(pt.clamp_min(1e-300))).sum(-1).mean())
    json.dump(meta, open(os.path.join(out_dir, "meta.json"), "w"), indent=1)
    log(f"{name}: entropy {meta['truth_entropy_nats']:.2f} nats; hf bf16 prefill KL {meta['hf_bf16_prefill_kl']:.4g} "
        f"top1 {meta['hf_bf16_prefill_top1']:.3f}; decode KL {meta['hf_bf16_decode_kl']:.4g} top1 {meta['hf_bf16_decode_top1']:.3f}; "
        f"decode vs prefill KL {meta['hf_bf16_decode_vs_prefill_kl']:.4g}")
    del m16
    if dev == "cuda":
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--b", type=int, default=B, help="sequences")
    ap.add_argument("--p", type=int, default=P, help="positions of each sequence")
    ap.add_argument("--n", type=int, default=N, help="prefill length before the decode steps (N < P)")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the random ids")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("cases", nargs="+", help="NAME=CHECKPOINT_DIR")
    a = ap.parse_args()
    if not 0 < a.n < a.p:
        sys.exit(f"--n must be in 1..{a.p - 1}, got {a.n}")
    ok = True
    for c in a.cases:
        name, ckpt = c.split("=", 1)
        try:
            run_case(name, ckpt, os.path.join(a.out, name), a.b, a.p, a.n, a.device, a.seed)
        except Exception as e:  # one broken case must not hide the others
            ok = False
            log(f"{name}: FAILED: {type(e).__name__}: {e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
