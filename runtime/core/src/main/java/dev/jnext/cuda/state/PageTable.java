package dev.jnext.cuda.state;

import java.util.Arrays;

/**
 * The KV pages of one sequence, in token order: token {@code i} lives in row {@code i % pageTokens} of page
 * {@code page(i / pageTokens)}. Grows with {@link #reserve}; {@link #release} gives every page back.
 */
public final class PageTable {
    private final PageAllocator allocator;
    private int[] pages = new int[4];
    private int count;
    private boolean released;

    PageTable(PageAllocator allocator) {
        this.allocator = allocator;
    }

    /** Makes room for tokens 0 .. tokens−1, taking new pages only as needed; all or nothing. */
    public void reserve(int tokens) {
        if (released) throw new IllegalStateException("page table was released");
        if (tokens < 0) throw new IllegalArgumentException("cannot reserve " + tokens + " tokens");
        int need = allocator.pagesFor(tokens) - count;
        if (need <= 0) return;
        int[] got = allocator.take(need);
        if (count + need > pages.length) pages = Arrays.copyOf(pages, Math.max(count + need, 2 * pages.length));
        System.arraycopy(got, 0, pages, count, need);
        count += need;
    }

    /**
     * Makes the table's first {@code shared.length} pages the given ones (a prefix restored from the cache: their holder
     * count goes up by one) and gives the pages they replace back; a table holding fewer pages grows to that many.
     */
    public void replacePrefix(int[] shared) {
        if (released) throw new IllegalStateException("page table was released");
        for (int p : shared) allocator.share(p);   // first, so that nothing is freed that a shared page might be
        if (shared.length > pages.length) pages = Arrays.copyOf(pages, Math.max(shared.length, 2 * pages.length));
        for (int i = 0; i < shared.length; i++) {
            if (i < count) allocator.give(pages[i]);
            pages[i] = shared[i];
        }
        count = Math.max(count, shared.length);
    }

    /** Pages {@code [from, to)} of the table, each with one more holder (the caller gives them back). */
    public int[] share(int from, int to) {
        if (released) throw new IllegalStateException("page table was released");
        if (from < 0 || to > count || from > to) throw new IndexOutOfBoundsException("pages " + from + ".." + to + " of " + count);
        int[] out = Arrays.copyOfRange(pages, from, to);
        for (int p : out) allocator.share(p);
        return out;
    }

    /** Returns every page to the pool; the table is empty and unusable afterwards. */
    public void release() {
        if (released) return;
        for (int i = 0; i < count; i++) allocator.give(pages[i]);
        count = 0;
        released = true;
    }

    /** Pages reserved so far. */
    public int pageCount() {
        return count;
    }

    /** Tokens the reserved pages can hold. */
    public int capacityTokens() {
        return count * allocator.pageTokens();
    }

    /** The id of the sequence's {@code index}-th page. */
    public int page(int index) {
        if (index < 0 || index >= count) throw new IndexOutOfBoundsException("page " + index + " of " + count);
        return pages[index];
    }

    /** A copy of the page ids, in order. */
    public int[] pages() {
        return Arrays.copyOf(pages, count);
    }

    PageAllocator allocator() {
        return allocator;
    }
}
