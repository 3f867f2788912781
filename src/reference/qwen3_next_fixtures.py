#!/usr/bin/env python3
"""Parity oracle: tiny random Qwen3-Next checkpoints + Hugging Face transformers fp32 logits.

Runs on the GPU host (transformers 5.17, torch CPU, numpy, safetensors; no network), on the CPU only:

    python3 src/reference/qwen3_next_fixtures.py --out "$OUT"

writes ONE archive $OUT/model_fixtures.tar.gz that unpacks to qwen3next-fixtures/:

    manifest.json                      what every fixture covers, versions, HF self-consistency numbers
    <fixture>/checkpoint/              config.json + *.safetensors (+ model.safetensors.index.json)
    <fixture>/ids.npy                  int32 [T]       T = 160 random token ids
    <fixture>/logits_full.npy          float32 [T, V]  one full forward (no cache) over ids
    <fixture>/hidden_full.npy          float32 [L+1, T, H]  output_hidden_states of that forward, as transformers
                                                         reports them (for layer-by-layer debugging only)
    <fixture>/logits_decode_hf.npy     float32 [S, V]  prefill ids[:P] with the cache, then S single-token steps
    <fixture>/logits_continuation_hf.npy float32 [M, V] prefill ids[:N], then ONE call of ids[N:N+M] with the cache
    <fixture>/ids_batch.npy            int32 [2, Tb]   two independent sequences
    <fixture>/logits_batch.npy         float32 [2, Tb, V]  one batched full forward
    <fixture>/logits_batch_decode_hf.npy float32 [Sb, 2, V] batched prefill of ids_batch[:, :Tb-Sb], then Sb batched steps
    <fixture>/logits_full_hf_bf16.npy  float32 [T, V]  (bf16 fixture only) the same forward run by HF in bfloat16

The reference for every cached schedule is logits_full (causality): row t of a prefill/decode/continuation
schedule must equal logits_full[t]. The *_hf arrays are what transformers itself produced through its cache;
manifest.json records their max distance from logits_full so a broken HF cache path is visible.

Every parameter is perturbed (spec section 8), so (1+w) norms, dt_bias, A_log and the gated norm weight all matter.
"""
import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time

import numpy as np
import torch

T_FULL = 160          # > 2 chunks of 64: covers padding of the last chunk
P_DECODE = 150        # prefill length before the single-token steps
N_CONT, M_CONT = 70, 80   # continuation: prefill 70, then one 80-token call (crosses a chunk boundary)
T_BATCH, S_BATCH = 100, 4


def log(msg):
    print(f"[fixtures {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fail(msg):
    print(f"[fixtures] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------------------------
# Fixture configurations. Together: 8 GDN layers, 4 full-attention layers, Hv > Hk (r = 2 and 3), dk != dv both ways,
# MoE + shared expert with norm_topk_prob true and false, dense layers via mlp_only_layers and via decoder_sparse_step,
# GQA 2:1 and 4:1 and none, partial RoPE 0.25 / 0.5 / 1.0, conv kernel 4 and 3, explicit non-periodic layer_types,
# tied embeddings, both config styles, both expert layouts, sharded and single-file, F32 and BF16 on disk.
# ---------------------------------------------------------------------------------------------------------------
FIXTURES = [
    dict(
        name="tiny-hub-sharded",
        description="spec section 8 model: 5.x config, hub per-expert layout, sharded safetensors + index, F32",
        config_style="5.x", expert_layout="hub", dtype="float32", shard="300KB",
        kwargs=dict(
            vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=5,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16, linear_value_head_dim=24,
            linear_conv_kernel_dim=4, num_experts=8, num_experts_per_tok=3, moe_intermediate_size=32,
            shared_expert_intermediate_size=40, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[4],
            full_attention_interval=4, partial_rotary_factor=0.25, rope_theta=10000.0, rms_norm_eps=1e-6,
            max_position_embeddings=512, tie_word_embeddings=False, hidden_act="silu"),
        seed=0,
    ),
    dict(
        name="small-legacy-fused",
        description="4.x-style config.json (rope_theta, partial_rotary_factor, full_attention_interval, torch_dtype), "
                    "fused experts (experts.gate_up_proj [E,2I,H], experts.down_proj [E,H,I]), single file, F32, "
                    "norm_topk_prob false, decoder_sparse_step 2 (layers 0,2,4 dense), Hv = 3 Hk, dk > dv, GQA 4:1",
        config_style="4.x", expert_layout="fused", dtype="float32", shard=None, interval=2,
        kwargs=dict(
            vocab_size=288, hidden_size=48, intermediate_size=80, num_hidden_layers=6,
            num_attention_heads=4, num_key_value_heads=1, head_dim=16,
            linear_num_key_heads=2, linear_num_value_heads=6, linear_key_head_dim=12, linear_value_head_dim=8,
            linear_conv_kernel_dim=4, num_experts=6, num_experts_per_tok=2, moe_intermediate_size=24,
            shared_expert_intermediate_size=20, norm_topk_prob=False, decoder_sparse_step=2, mlp_only_layers=[],
            full_attention_interval=2, partial_rotary_factor=0.5, rope_theta=1000000.0, rms_norm_eps=1e-6,
            max_position_embeddings=512, tie_word_embeddings=False, hidden_act="silu"),
        seed=1,
    ),
    dict(
        name="micro-bf16-tied",
        description="BF16 on disk (reference = HF fp32 upcast; bf16 HF logits saved too), explicit non-periodic "
                    "layer_types, tied embeddings (no lm_head.weight), conv kernel 3, Hv = Hk, full RoPE, no GQA",
        config_style="5.x", expert_layout="hub", dtype="bfloat16", shard=None,
        kwargs=dict(
            vocab_size=256, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
            layer_types=["linear_attention", "full_attention", "linear_attention"],
            num_attention_heads=2, num_key_value_heads=2, head_dim=16,
            linear_num_key_heads=2, linear_num_value_heads=2, linear_key_head_dim=8, linear_value_head_dim=8,
            linear_conv_kernel_dim=3, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16,
            shared_expert_intermediate_size=24, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
            partial_rotary_factor=1.0, rope_theta=10000.0, rms_norm_eps=1e-6,
            max_position_embeddings=512, tie_word_embeddings=True, hidden_act="silu"),
        seed=2,
    ),
]


def make_config(kwargs):
    from transformers import Qwen3NextConfig
    try:
        return Qwen3NextConfig(**kwargs)
    except TypeError as e:  # a strict config that refuses the legacy rope kwargs: pass rope_parameters instead
        log(f"Qwen3NextConfig refused legacy kwargs ({e}); retrying with rope_parameters")
        kw = dict(kwargs)
        rp = {"rope_type": "default", "rope_theta": kw.pop("rope_theta"),
              "partial_rotary_factor": kw.pop("partial_rotary_factor")}
        interval = kw.pop("full_attention_interval", None)
        if interval is not None and "layer_types" not in kw:
            kw["layer_types"] = ["full_attention" if (i + 1) % interval == 0 else "linear_attention"
                                 for i in range(kw["num_hidden_layers"])]
        return Qwen3NextConfig(rope_parameters=rp, **kw)


def npsave(path, arr, dtype):
    a = np.ascontiguousarray(np.asarray(arr, dtype=dtype))
    np.save(path, a)


def logits_of(model, ids, **kw):
    out = model(input_ids=ids, **kw)
    return out, out.logits.detach().to(torch.float32)


def max_rel(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        fail(f"shape mismatch {a.shape} vs {ref.shape}")
    return float(np.max(np.abs(a - ref)) / max(1e-30, np.max(np.abs(ref))))


def safetensors_inventory(ckpt_dir):
    from safetensors import safe_open
    inv = {}
    for fn in sorted(os.listdir(ckpt_dir)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(ckpt_dir, fn), framework="pt") as f:
                for k in f.keys():
                    t = f.get_slice(k)
                    inv[k] = {"file": fn, "dtype": str(t.get_dtype()), "shape": list(t.get_shape())}
    return inv


def write_fused_checkpoint(model, ckpt_dir, hub_dir):
    """Fused expert layout = transformers 5.x in-memory parameter names, written as they are."""
    from safetensors.torch import save_file
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if not any(k.endswith("mlp.experts.gate_up_proj") for k in sd):
        # transformers kept per-expert modules in memory: fuse them ourselves (same tensors, other names)
        fused = {}
        layers = sorted({int(k.split(".")[2]) for k in sd if ".mlp.experts." in k})
        for i in layers:
            p = f"model.layers.{i}.mlp.experts."
            es = sorted({int(k[len(p):].split(".")[0]) for k in sd if k.startswith(p)})
            gu = [torch.cat([sd.pop(f"{p}{e}.gate_proj.weight"), sd.pop(f"{p}{e}.up_proj.weight")], 0) for e in es]
            dn = [sd.pop(f"{p}{e}.down_proj.weight") for e in es]
            fused[p + "gate_up_proj"] = torch.stack(gu, 0).contiguous()
            fused[p + "down_proj"] = torch.stack(dn, 0).contiguous()
        sd.update(fused)
    os.makedirs(ckpt_dir, exist_ok=True)
    save_file(sd, os.path.join(ckpt_dir, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(hub_dir, "config.json"), os.path.join(ckpt_dir, "config.json"))
    inv = safetensors_inventory(ckpt_dir)
    if not any(k.endswith("experts.gate_up_proj") for k in inv):
        fail("fused checkpoint has no experts.gate_up_proj tensor")
    for k, v in inv.items():
        if k.endswith("experts.gate_up_proj"):
            e, two_i, h = v["shape"]
            if two_i % 2:
                fail(f"{k} shape {v['shape']} is not [E, 2I, H]")


def to_legacy_config(ckpt_dir, interval, dtype_name):
    """Rewrite a transformers 5.x config.json in the 4.x style (same math)."""
    path = os.path.join(ckpt_dir, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters", None) or {}
    layer_types = cfg.pop("layer_types", None)
    want = ["full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(cfg["num_hidden_layers"])]
    if layer_types is not None and list(layer_types) != want:
        fail(f"legacy rewrite: layer_types {layer_types} do not follow full_attention_interval {interval}")
    cfg.pop("dtype", None)
    cfg["rope_theta"] = rp.get("rope_theta", cfg.get("rope_theta"))
    cfg["partial_rotary_factor"] = rp.get("partial_rotary_factor", cfg.get("partial_rotary_factor"))
    cfg["rope_scaling"] = None
    cfg["full_attention_interval"] = interval
    cfg["torch_dtype"] = dtype_name
    cfg["transformers_version"] = "4.57.1"
    if cfg["rope_theta"] is None or cfg["partial_rotary_factor"] is None:
        fail(f"legacy rewrite: could not find rope_theta/partial_rotary_factor in {rp}")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    return cfg


def load_eager(ckpt_dir, dtype):
    from transformers import Qwen3NextForCausalLM
    m = Qwen3NextForCausalLM.from_pretrained(ckpt_dir, dtype=dtype, attn_implementation="eager")
    return m.eval()


def run_cases(model, ids, ids_batch, vocab):
    """All forward schedules on one model. Returns dict name -> float32 numpy array, plus consistency numbers."""
    res, notes = {}, {}
    with torch.no_grad():
        out, full = logits_of(model, ids[None, :], use_cache=False, output_hidden_states=True)
        res["logits_full"] = full[0].numpy()
        hs = getattr(out, "hidden_states", None)
        if hs is not None:
            res["hidden_full"] = torch.stack([h[0].to(torch.float32) for h in hs], 0).numpy()
        # prefill + single-token decode
        out, pre = logits_of(model, ids[None, :P_DECODE], use_cache=True)
        cache = out.past_key_values
        notes["prefill_vs_full"] = max_rel(pre[0].numpy(), res["logits_full"][:P_DECODE])
        steps = []
        for t in range(P_DECODE, T_FULL):
            out, lg = logits_of(model, ids[None, t:t + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(lg[0, -1].numpy())
        res["logits_decode_hf"] = np.stack(steps, 0)
        notes["decode_hf_vs_full"] = max_rel(res["logits_decode_hf"], res["logits_full"][P_DECODE:T_FULL])
        # multi-token continuation from a non-empty cache
        out, _ = logits_of(model, ids[None, :N_CONT], use_cache=True)
        out, cont = logits_of(model, ids[None, N_CONT:N_CONT + M_CONT], past_key_values=out.past_key_values,
                              use_cache=True)
        res["logits_continuation_hf"] = cont[0].numpy()
        notes["continuation_hf_vs_full"] = max_rel(res["logits_continuation_hf"],
                                                   res["logits_full"][N_CONT:N_CONT + M_CONT])
        # batch of two independent sequences
        _, bl = logits_of(model, ids_batch, use_cache=False)
        res["logits_batch"] = bl.numpy()
        for b in range(ids_batch.shape[0]):
            _, single = logits_of(model, ids_batch[b:b + 1], use_cache=False)
            notes[f"batch_row{b}_vs_single"] = max_rel(res["logits_batch"][b], single[0].numpy())
        pre_len = T_BATCH - S_BATCH
        out, _ = logits_of(model, ids_batch[:, :pre_len], use_cache=True)
        cache = out.past_key_values
        steps = []
        for t in range(pre_len, T_BATCH):
            out, lg = logits_of(model, ids_batch[:, t:t + 1], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(lg[:, -1].numpy())
        res["logits_batch_decode_hf"] = np.stack(steps, 0)
        notes["batch_decode_hf_vs_full"] = max_rel(res["logits_batch_decode_hf"],
                                                   np.transpose(res["logits_batch"][:, pre_len:], (1, 0, 2)))
    for k, v in res.items():
        if not np.all(np.isfinite(v)):
            fail(f"non-finite values in {k}")
    if res["logits_full"].shape != (T_FULL, vocab):
        fail(f"logits_full has shape {res['logits_full'].shape}")
    return res, notes


def build_fixture(spec, root):
    from transformers import Qwen3NextForCausalLM
    name = spec["name"]
    log(f"--- {name}: {spec['description']}")
    fdir = os.path.join(root, name)
    ckpt = os.path.join(fdir, "checkpoint")
    os.makedirs(fdir)
    torch.manual_seed(spec["seed"])
    cfg = make_config(spec["kwargs"])
    model = Qwen3NextForCausalLM(cfg).eval()
    n_params = 0
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
            n_params += p.numel()
    log(f"{name}: {n_params} parameters, layer_types={list(cfg.layer_types)}")

    work = tempfile.mkdtemp(prefix="qwen3next-hub-")
    disk_dtype = torch.bfloat16 if spec["dtype"] == "bfloat16" else torch.float32
    if disk_dtype != torch.float32:
        model = model.to(disk_dtype)
    # hub layout through save_pretrained (5.x reverts its fused experts to per-expert names on save)
    save_kw = {}
    if spec["shard"]:
        save_kw["max_shard_size"] = spec["shard"]
    try:
        model.save_pretrained(work, **save_kw)
    except TypeError as e:
        log(f"save_pretrained refused {save_kw} ({e}); saving unsharded")
        model.save_pretrained(work)
    del model

    # the reference model: what from_pretrained makes of the saved files, in fp32, eager attention
    ref = load_eager(work, torch.float32)
    hub_inv = safetensors_inventory(work)
    if spec["expert_layout"] == "hub":
        if not any(".mlp.experts.0.gate_proj.weight" in k for k in hub_inv):
            fail(f"save_pretrained did not write hub expert names; keys: {sorted(hub_inv)[:20]}")
        shutil.copytree(work, ckpt)
    else:
        write_fused_checkpoint(ref, ckpt, work)
    if spec["shard"] and not os.path.exists(os.path.join(ckpt, "model.safetensors.index.json")):
        fail("sharded fixture has no model.safetensors.index.json (max_shard_size ignored?)")
    if spec["config_style"] == "4.x":
        to_legacy_config(ckpt, spec["interval"], spec["dtype"])

    inv = safetensors_inventory(ckpt)
    with open(os.path.join(ckpt, "config.json")) as f:
        saved_cfg = json.load(f)

    g = torch.Generator().manual_seed(1000 + spec["seed"])
    vocab = spec["kwargs"]["vocab_size"]
    ids = torch.randint(0, vocab, (T_FULL,), generator=g)
    ids_batch = torch.randint(0, vocab, (2, T_BATCH), generator=g)

    t0 = time.time()
    res, notes = run_cases(ref, ids, ids_batch, vocab)
    log(f"{name}: reference cases in {time.time() - t0:.1f}s; HF self-consistency {notes}")

    # the checkpoint as actually committed, reloaded by transformers (legacy config / fused layout): same logits?
    try:
        again = load_eager(ckpt, torch.float32)
        with torch.no_grad():
            lg = again(input_ids=ids[None, :], use_cache=False).logits[0].to(torch.float32).numpy()
        notes["reload_final_checkpoint_vs_ref"] = max_rel(lg, res["logits_full"])
        notes["reload_final_layer_types"] = list(again.config.layer_types)
        del again
    except Exception as e:  # informative only: the reference is the model that wrote these exact tensors
        notes["reload_final_checkpoint_error"] = f"{type(e).__name__}: {e}"[:500]
    log(f"{name}: reload check {notes.get('reload_final_checkpoint_vs_ref', notes.get('reload_final_checkpoint_error'))}")

    if disk_dtype == torch.bfloat16:
        bf = load_eager(ckpt if spec["expert_layout"] == "hub" else work, torch.bfloat16)
        with torch.no_grad():
            res["logits_full_hf_bf16"] = bf(input_ids=ids[None, :], use_cache=False).logits[0].to(torch.float32).numpy()
        notes["hf_bf16_vs_fp32"] = max_rel(res["logits_full_hf_bf16"], res["logits_full"])
        del bf

    npsave(os.path.join(fdir, "ids.npy"), ids.numpy(), np.int32)
    npsave(os.path.join(fdir, "ids_batch.npy"), ids_batch.numpy(), np.int32)
    for k, v in res.items():
        npsave(os.path.join(fdir, k + ".npy"), v, np.float32)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "name": name, "description": spec["description"], "config_style": spec["config_style"],
        "expert_layout": spec["expert_layout"], "disk_dtype": spec["dtype"],
        "sharded": os.path.exists(os.path.join(ckpt, "model.safetensors.index.json")),
        "parameters": n_params, "layer_types": list(ref.config.layer_types),
        "mlp_only_layers": list(ref.config.mlp_only_layers), "decoder_sparse_step": ref.config.decoder_sparse_step,
        "norm_topk_prob": ref.config.norm_topk_prob, "tie_word_embeddings": bool(saved_cfg.get("tie_word_embeddings")),
        "schedule": {"T_full": T_FULL, "P_decode": P_DECODE, "N_cont": N_CONT, "M_cont": M_CONT,
                     "T_batch": T_BATCH, "S_batch": S_BATCH},
        "max_abs_logit_full": float(np.max(np.abs(res["logits_full"]))),
        "hf_consistency_max_rel": notes,
        "arrays": {k: list(v.shape) for k, v in res.items()},
        "tensors": inv,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="output directory; model_fixtures.tar.gz is written there")
    args = ap.parse_args()
    import transformers
    log(f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}")
    if not transformers.__version__.startswith("5."):
        log(f"WARNING: expected transformers 5.x, got {transformers.__version__}")
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    os.makedirs(args.out, exist_ok=True)
    stage = tempfile.mkdtemp(prefix="qwen3next-fixtures-")
    root = os.path.join(stage, "qwen3next-fixtures")
    os.makedirs(root)
    entries = [build_fixture(s, root) for s in FIXTURES]
    manifest = {
        "generator": "src/reference/qwen3_next_fixtures.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "reference": "Qwen3NextForCausalLM.from_pretrained(dir, dtype=torch.float32, attn_implementation='eager'), CPU",
        "fixtures": entries,
    }
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    tar_path = os.path.join(args.out, "model_fixtures.tar.gz")
    with tarfile.open(tar_path, "w:gz") as tar:
        tar.add(root, arcname="qwen3next-fixtures")
    size = os.path.getsize(tar_path)
    log(f"wrote {tar_path} ({size / 1e6:.2f} MB)")
    if size > 16 * 1024 * 1024:
        fail(f"archive is {size} bytes, over the 16 MiB limit")
    for e in entries:
        log(f"{e['name']}: {json.dumps(e['hf_consistency_max_rel'])}")
    log("done")


if __name__ == "__main__":
    main()
