package dev.jnext.cuda.state;

import dev.jnext.JnextException;

import java.util.BitSet;

/**
 * Host-side bookkeeping of the KV pool's pages: which are free, and which belong to which sequence's {@link PageTable}.
 * The lowest free page is handed out first, so allocation is deterministic; sequences that grow in turns get pages that
 * are not contiguous, which is why the kernels always read through the page table.
 *
 * <p>A page may have several holders (the prefix cache: a cached prefix's pages are held by the cache's tree and by every
 * sequence resumed from it, read-only — sequences only write tokens past the pages they share): {@link #share} adds one,
 * {@link #give} drops one, and the page is free again when the last holder gives it back.
 */
public final class PageAllocator {
    private final int pageTokens;
    private final BitSet free;
    private final int[] holders;
    private final int pages;
    private int freeCount;

    /** An allocator of {@code pages} pages of {@code pageTokens} tokens, all free. */
    public PageAllocator(int pages, int pageTokens) {
        if (pages < 1) throw new IllegalArgumentException("KV pool: at least one page is needed, got " + pages);
        if (pageTokens < 1) throw new IllegalArgumentException("KV pool: page size must be positive, got " + pageTokens);
        this.pages = pages;
        this.pageTokens = pageTokens;
        this.free = new BitSet(pages);
        free.set(0, pages);
        this.freeCount = pages;
        this.holders = new int[pages];
    }

    /** Pages of the pool. */
    public int pages() {
        return pages;
    }

    /** Tokens per page. */
    public int pageTokens() {
        return pageTokens;
    }

    /** Pages not held by any sequence. */
    public int freePages() {
        return freeCount;
    }

    /** An empty page table for a new sequence. */
    public PageTable newSequence() {
        return new PageTable(this);
    }

    /** Pages needed to hold {@code tokens} tokens. */
    public int pagesFor(int tokens) {
        return (tokens + pageTokens - 1) / pageTokens;
    }

    /** Takes {@code count} pages (lowest first) or none: fails when fewer are free. */
    int[] take(int count) {
        if (count > freeCount) {
            throw new JnextException("KV cache is full: " + count + " more pages of " + pageTokens + " tokens needed, "
                    + freeCount + " of " + pages + " free");
        }
        int[] out = new int[count];
        int p = -1;
        for (int i = 0; i < count; i++) {
            p = free.nextSetBit(p + 1);
            free.clear(p);
            holders[p] = 1;
            out[i] = p;
        }
        freeCount -= count;
        return out;
    }

    /** Adds a holder to a page that is in use (the prefix cache, or a sequence resumed from it). */
    public void share(int page) {
        if (page < 0 || page >= pages || free.get(page)) throw new IllegalStateException("KV page " + page + " is not in use");
        holders[page]++;
    }

    /** Drops one holder of {@code page}; the page is free when the last one gives it back. */
    public void give(int page) {
        if (page < 0 || page >= pages || free.get(page)) {
            throw new IllegalStateException("KV page " + page + " returned twice or never taken");
        }
        if (--holders[page] > 0) return;
        free.set(page);
        freeCount++;
    }

    /** How many holders {@code page} has (0: free). */
    public int holders(int page) {
        if (page < 0 || page >= pages) throw new IndexOutOfBoundsException("page " + page + " of " + pages);
        return holders[page];
    }
}
