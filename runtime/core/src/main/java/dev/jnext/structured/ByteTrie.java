package dev.jnext.structured;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A small byte trie over a few byte strings (enum literals, an object's property names): node 0 is the root, each node
 * knows its children by byte, the index of the word that ends there ({@link #value}, −1 for none) and the set of words
 * below it ({@link #below}, as a bit mask of word indices; words past 63 share bit 63). Immutable.
 */
final class ByteTrie {
    private final byte[][] labels;
    private final int[][] kids;
    final int[] value;
    final long[] below;

    private ByteTrie(byte[][] labels, int[][] kids, int[] value, long[] below) {
        this.labels = labels;
        this.kids = kids;
        this.value = value;
        this.below = below;
    }

    /** The trie of {@code words}; word {@code i} ends at a node whose {@link #value} is {@code i} (the first, for duplicates). */
    static ByteTrie of(List<byte[]> words) {
        List<byte[]> labels = new ArrayList<>();
        List<int[]> kids = new ArrayList<>();
        List<Integer> values = new ArrayList<>();
        List<Long> below = new ArrayList<>();
        labels.add(new byte[0]);
        kids.add(new int[0]);
        values.add(-1);
        below.add(0L);
        for (int w = 0; w < words.size(); w++) {
            long bit = 1L << Math.min(w, 63);
            int node = 0;
            below.set(0, below.get(0) | bit);
            for (byte b : words.get(w)) {
                int next = find(labels.get(node), kids.get(node), b & 0xFF);
                if (next < 0) {
                    next = labels.size();
                    labels.add(new byte[0]);
                    kids.add(new int[0]);
                    values.add(-1);
                    below.add(0L);
                    byte[] l = Arrays.copyOf(labels.get(node), labels.get(node).length + 1);
                    int[] k = Arrays.copyOf(kids.get(node), kids.get(node).length + 1);
                    l[l.length - 1] = b;
                    k[k.length - 1] = next;
                    labels.set(node, l);
                    kids.set(node, k);
                }
                node = next;
                below.set(node, below.get(node) | bit);
            }
            if (values.get(node) < 0) values.set(node, w);
        }
        return new ByteTrie(labels.toArray(byte[][]::new), kids.toArray(int[][]::new),
                values.stream().mapToInt(Integer::intValue).toArray(), below.stream().mapToLong(Long::longValue).toArray());
    }

    private static int find(byte[] labels, int[] kids, int b) {
        for (int i = 0; i < labels.length; i++) if ((labels[i] & 0xFF) == b) return kids[i];
        return -1;
    }

    /** The child of {@code node} by byte {@code b}, or −1. */
    int child(int node, int b) {
        return find(labels[node], kids[node], b);
    }

    /** Nodes in the trie. */
    int size() {
        return labels.length;
    }
}
