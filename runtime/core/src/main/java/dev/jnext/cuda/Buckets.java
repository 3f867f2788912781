package dev.jnext.cuda;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Sizes that graphs are captured for (ascending); a step of n replays the smallest bucket ≥ n. The defaults are
 * sglang's: decode batch sizes 1, 2, 4, 8, 12, then 16–256 step 8; prefill token counts 4–32 step 4, 48–256 step 16,
 * 288–512 step 32, 576–1024 step 64, 1280–4096 step 256, 4608–8192 step 512 (58 sizes).
 */
record Buckets(int[] sizes) {

    public Buckets {
        if (sizes.length == 0) throw new IllegalArgumentException("buckets: at least one size");
        sizes = sizes.clone();
        for (int i = 0; i < sizes.length; i++) {
            if (sizes[i] < 1 || (i > 0 && sizes[i] <= sizes[i - 1])) {
                throw new IllegalArgumentException("buckets must be positive and ascending: " + Arrays.toString(sizes));
            }
        }
    }

    @Override
    public int[] sizes() {
        return sizes.clone();
    }

    /** sglang's decode batch buckets up to the first one ≥ {@code maxBatch}. */
    public static Buckets decode(int maxBatch) {
        List<Integer> out = new ArrayList<>();
        int[] head = {1, 2, 4, 8, 12};
        for (int s : head) {
            out.add(s);
            if (s >= maxBatch) return of(out);
        }
        for (int s = 16; ; s += 8) {
            out.add(s);
            if (s >= maxBatch) return of(out);
        }
    }

    /** sglang's prefill token buckets up to {@code maxTokens} (the last one at least covers it: the list is cut there). */
    public static Buckets prefill(int maxTokens) {
        List<Integer> out = new ArrayList<>();
        int[][] ranges = {{4, 32, 4}, {48, 256, 16}, {288, 512, 32}, {576, 1024, 64}, {1280, 4096, 256}, {4608, 8192, 512}};
        for (int[] r : ranges) {
            for (int s = r[0]; s <= r[1]; s += r[2]) {
                if (s > maxTokens) return of(out.isEmpty() ? List.of(maxTokens) : out);
                out.add(s);
            }
        }
        return of(out);
    }

    private static Buckets of(List<Integer> sizes) {
        return new Buckets(sizes.stream().mapToInt(Integer::intValue).toArray());
    }

    /** The smallest bucket ≥ n, or −1 when n is above the largest. */
    public int bucketFor(int n) {
        for (int s : sizes) if (s >= n) return s;
        return -1;
    }

    public int largest() {
        return sizes[sizes.length - 1];
    }

    public int count() {
        return sizes.length;
    }
}
