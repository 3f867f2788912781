package dev.jnext.fuzz;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/** A seed input with some named edits applied; its name (seed and edits) is what a failure shows. */
record Mutant(String name, byte[] bytes) {
    /** One named edit. */
    record Mutation(String name, UnaryOperator<byte[]> op) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** One of {@code seeds} (name to bytes) with between min and max mutations drawn by {@code mutation}. */
    static Mutant draw(SplittableRandom r, Map<String, byte[]> seeds, int min, int max,
                       Function<SplittableRandom, Mutation> mutation) {
        Map.Entry<String, byte[]> seed = Tries.pick(r, List.copyOf(seeds.entrySet()));
        List<Mutation> edits = Tries.list(r, min, max, mutation);
        byte[] bytes = seed.getValue().clone();
        for (Mutation m : edits) bytes = m.op().apply(bytes);
        return new Mutant(seed.getKey() + " " + edits, bytes);
    }

    @Override
    public String toString() {
        return name;
    }
}
