#!/usr/bin/env python3
"""Qwen3.5 tokenizer goldens without the real tokenizer file: a synthetic vocabulary in transformers' pipeline.

No Qwen3.5 tokenizer package is reachable from these machines, so this script builds the tokenizer that
transformers 5.17's `Qwen3_5Tokenizer` class defines (NFC, Split with its PRETOKENIZE_REGEX -- combining marks join
letter runs --, ByteLevel without a prefix space, byte-level BPE, ByteLevel decoder; <|endoftext|> as eos/pad/unk, no
BOS) over a small vocabulary that `tokenizers` trains on src/reference/tokenizer_corpus.jsonl, adds the Qwen-family
special tokens, saves it with save_pretrained, and records what `tokenizers` and transformers make of every corpus
string. Needs tokenizers and transformers (CPU, no network):

    python3 src/reference/qwen3_5_tokenizer_goldens.py --out runtime/core/src/test/resources/dev/jnext/tokenizer/qwen35

writes there: tokenizer.json, tokenizer_config.json (as save_pretrained writes them), encode.jsonl (per string:
ids, pre-tokenizer pieces, decoded text), decode.jsonl (random id sequences) and meta.json.

With --chat-template FILE (a Qwen3.5 checkpoint's chat_template.jinja) and --chat-out DIR it also renders
src/reference/chat_conversations.json and src/reference/qwen3_5_chat_conversations.json with
apply_chat_template (tools in the XML style, thinking on and off) into DIR/chat.jsonl, beside a copy of the template;
that folder is not committed (the template is the checkpoint's), and the Java test reads it when
-Djnext.qwen35.chat=DIR is given.
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import hashlib
import json
import pathlib
import platform
import random
import shutil
import sys
import tempfile

# Strings that exercise \p{M}: combining marks after letters, after spaces, after symbols and digits, alone, runs of
# them, in several scripts (decomposed Latin, Devanagari, Thai, Arabic harakat, Hebrew points, Hangul jamo, enclosing).
MARK_STRINGS = [
    "e\u0301", "cafe\u0301 au lait", " \u0301x", "\u0301", "\u0301\u0302\u0303", "a\u0301b\u0302c", "1\u0301", "$\u0301",
    "!\u0301?", "x \u0301", "\u0915\u093f\u0924\u093e\u092c", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a", "\u0645\u064f\u062d\u064e\u0645\u0651\u064e\u062f",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u1100\u1161\u11a8", "a\u20dd b\u20de", "(\u0301)", "'\u0301s", "it's\u0301",
    "\u0301\n\u0301", "--\u0301--", "\u00e9\u0301\u0065\u0300", "\U0001d400\u0301", "\u0303\u0303 \u0303abc",
]

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
           "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
           "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
# added but not special in the Qwen3 family's tokenizer.json (kept in decoded text even when skipping special tokens)
ADDED = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
         "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>"]


def log(msg):
    print(f"[qwen3_5_tokenizer_goldens] {msg}", flush=True)


def die(msg):
    print(f"[qwen3_5_tokenizer_goldens] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def corpus(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    for i, s in enumerate(MARK_STRINGS):
        rows.append({"id": f"marks-{i}", "text": s})
    return rows


def build(rows, vocab_size, work):
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen3_5Tokenizer
    # the class's own pipeline (normalizer, pre-tokenizer) trains the merges, so pieces are the class's pieces
    pipeline = Qwen3_5Tokenizer()._tokenizer
    trainee = Tokenizer(models.BPE())
    trainee.normalizer = pipeline.normalizer
    trainee.pre_tokenizer = pipeline.pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    trainee.train_from_iterator([r["text"] for r in rows] * 2, trainer)
    model = json.loads(trainee.to_str())["model"]
    vocab, merges = model["vocab"], model["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    tok = Qwen3_5Tokenizer(vocab=vocab, merges=merges)
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL], special_tokens=True)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    tok.save_pretrained(work)
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default="src/reference/tokenizer_corpus.jsonl")
    ap.add_argument("--vocab-size", type=int, default=3000)
    ap.add_argument("--chat-template", default=None, help="a Qwen3.5 checkpoint's chat_template.jinja")
    ap.add_argument("--chat-out", default=None, help="where the chat goldens go (with a copy of the template)")
    ap.add_argument("--conversations", default="src/reference/chat_conversations.json,"
                                                "src/reference/qwen3_5_chat_conversations.json")
    args = ap.parse_args()
    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX
    log(f"python {platform.python_version()}, tokenizers {tokenizers.__version__}, transformers {transformers.__version__}")

    rows = corpus(args.corpus)
    work = pathlib.Path(tempfile.mkdtemp(prefix="qwen35-tok-"))
    build(rows, args.vocab_size, work)
    raw = Tokenizer.from_file(str(work / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(work), local_files_only=True)
    saved = json.loads((work / "tokenizer.json").read_text())
    pattern = saved["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    if pattern != PRETOKENIZE_REGEX:
        die(f"saved pattern {pattern!r} is not the class's {PRETOKENIZE_REGEX!r}")
    log(f"{type(hf).__name__}: vocabulary {raw.get_vocab_size(with_added_tokens=True)}, eos {hf.eos_token!r} "
        f"({hf.eos_token_id}), bos {hf.bos_token!r}, pattern {pattern}")

    encode_lines, disagreements = [], []
    for row in rows:
        text = row["text"]
        ids = list(raw.encode(text, add_special_tokens=True).ids)
        ids_hf = list(hf(text, add_special_tokens=True)["input_ids"])
        normalized = raw.normalizer.normalize_str(text)
        pieces = [p for p, _ in raw.pre_tokenizer.pre_tokenize_str(normalized)]
        decoded = raw.decode(ids, skip_special_tokens=False)
        if ids != ids_hf or decoded != hf.decode(ids, skip_special_tokens=False):
            disagreements.append(row["id"])
        encode_lines.append(json.dumps({"id": row["id"], "text": text, "ids": ids, "pieces": pieces,
                                        "decoded": decoded,
                                        "decoded_skip_special": raw.decode(ids, skip_special_tokens=True)},
                                       ensure_ascii=True))
    rnd = random.Random(35)
    total = raw.get_vocab_size(with_added_tokens=True)
    decode_lines = []
    for n in range(300):
        ids = [rnd.randrange(total) for _ in range(1 if n < 100 else rnd.randint(2, 20))]
        decode_lines.append(json.dumps({"ids": ids, "decoded": raw.decode(ids, skip_special_tokens=False),
                                        "decoded_skip_special": raw.decode(ids, skip_special_tokens=True)},
                                       ensure_ascii=True))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(work / name, out / name)
    (out / "encode.jsonl").write_text("\n".join(encode_lines) + "\n")
    (out / "decode.jsonl").write_text("\n".join(decode_lines) + "\n")
    meta = {"generator": "src/reference/qwen3_5_tokenizer_goldens.py", "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "class": type(hf).__name__, "pattern": pattern, "vocab_size_with_added": total,
            "eos_token": hf.eos_token, "eos_token_id": hf.eos_token_id, "bos_token": hf.bos_token,
            "pad_token": hf.pad_token, "strings": len(rows), "tokenizers_vs_transformers_disagreements": disagreements}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=True) + "\n")
    log(f"wrote {out}: {len(rows)} strings, {len(decode_lines)} id sequences, {len(disagreements)} disagreements")

    if args.chat_template:
        if not args.chat_out:
            die("--chat-template needs --chat-out")
        template = pathlib.Path(args.chat_template).read_text(encoding="utf-8")
        digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
        hf.chat_template = template
        chat_out = pathlib.Path(args.chat_out)
        chat_out.mkdir(parents=True, exist_ok=True)
        (chat_out / "chat_template.jinja").write_text(template, encoding="utf-8")
        lines, errors, n_conv = [], [], 0
        for path in args.conversations.split(","):
            with open(path, encoding="utf-8") as f:
                conversations = json.load(f)
            n_conv += len(conversations)
            for conv in conversations:
                for gen in (False, True):
                    for thinking in (None, True, False):
                        kwargs = dict(conv.get("kwargs", {}))
                        if thinking is not None:
                            kwargs["enable_thinking"] = thinking
                        try:
                            prompt = hf.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False,
                                                            add_generation_prompt=gen, **kwargs)
                        except Exception as e:
                            errors.append({"id": conv["id"], "add_generation_prompt": gen, "kwargs": kwargs,
                                           "error": f"{type(e).__name__}: {e}"})
                            continue
                        lines.append(json.dumps({"id": conv["id"], "add_generation_prompt": gen, "kwargs": kwargs,
                                                 "messages": conv["messages"], "tools": conv.get("tools"),
                                                 "prompt": prompt,
                                                 "ids": list(raw.encode(prompt, add_special_tokens=True).ids)},
                                                ensure_ascii=True))
        (chat_out / "chat.jsonl").write_text("\n".join(lines) + "\n")
        (chat_out / "chat_errors.json").write_text(json.dumps(errors, indent=1) + "\n")
        (chat_out / "meta.json").write_text(json.dumps({"template_sha256": digest, "conversations": n_conv,
                                                        "prompts": len(lines), "errors": len(errors),
                                                        "transformers": transformers.__version__}, indent=1) + "\n")
        log(f"chat: template sha256 {digest}; {len(lines)} prompts, {len(errors)} refused, in {chat_out}")


if __name__ == "__main__":
    main()
