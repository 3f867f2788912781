package dev.jnext.backend.prefix;

import java.util.TreeSet;

/**
 * Where a prompt's prefill leaves state snapshots for the prefix cache, all on multiples of the backend's alignment (the
 * delta rule's chunk, so that a request resumed there computes the rest as a cold prefill would) and past the position
 * the prompt resumed from:
 *
 * <ul>
 *   <li><b>required</b> — the branch point (the aligned position at or before the point where the prompt leaves the path
 *       the tree holds: a later prompt sharing the same head resumes there), the prompt's last aligned position (what the
 *       next turn of a chat, which extends the prompt, resumes from) and the last aligned position before its end (what
 *       the same prompt sent again resumes from: at least its last token is always computed);</li>
 *   <li><b>every {@code interval} tokens</b> along the prompt (long prompts that share a head of any length).</li>
 * </ul>
 *
 * The CPU backend captures all of them inside a step; the CUDA backend, which has a sequence's state only between steps,
 * ends prompt chunks at the required ones and takes the interval ones where a chunk happens to end.
 */
public final class SnapshotPlan {
    private SnapshotPlan() {
    }

    /**
     * The required positions.
     *
     * @param length   the prompt's length
     * @param matched  how many leading prompt tokens the tree held at the lookup ({@link PrefixTree.Match#matched()})
     * @param resumeAt where the prompt resumed (0: from nothing); only positions after it are planned
     * @param align    the alignment, at least 1
     */
    public static TreeSet<Integer> required(int length, int matched, int resumeAt, int align) {
        check(length, matched, resumeAt, align);
        TreeSet<Integer> plan = new TreeSet<>();
        plan.add(matched / align * align);
        plan.add(length / align * align);
        plan.add((length - 1) / align * align);
        plan.removeIf(q -> q <= resumeAt);
        return plan;
    }

    /** The required positions and one every {@code interval} tokens (a multiple of {@code align}). */
    public static TreeSet<Integer> all(int length, int matched, int resumeAt, int align, int interval) {
        if (interval < 1 || interval % align != 0) {
            throw new IllegalArgumentException("snapshot interval " + interval + " is not a positive multiple of " + align);
        }
        TreeSet<Integer> plan = required(length, matched, resumeAt, align);
        for (int q = interval; q <= length; q += interval) if (q > resumeAt) plan.add(q);
        return plan;
    }

    private static void check(int length, int matched, int resumeAt, int align) {
        if (align < 1) throw new IllegalArgumentException("alignment must be >= 1, got " + align);
        if (length < 1 || matched < 0 || matched > length || resumeAt < 0 || resumeAt > matched) {
            throw new IllegalArgumentException("bad prompt positions: length " + length + ", matched " + matched
                    + ", resumed at " + resumeAt);
        }
    }
}
