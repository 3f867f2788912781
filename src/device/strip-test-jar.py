#!/usr/bin/env python3
"""Copies the library's test jar for the GPU host without what only CI runs: the fuzz tests and corpora, the CPU parity
fixtures and the tokenizer goldens (they would push the pack past the 64 MiB a device call carries)."""
import sys
import zipfile

SKIP = ("dev/jnext/fuzz/", "qwen3next-fixtures/", "dev/jnext/tokenizer/goldens/")
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if not item.filename.startswith(SKIP):
            zout.writestr(item, zin.read(item.filename))
