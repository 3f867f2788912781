package dev.jnext.cpu.ops;

import dev.jnext.model.weights.Matrix;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The sparse MoE block ({@code Qwen3NextSparseMoeBlock}) on x [rows, H]:
 * router logits x·Wrᵀ → fp32 softmax → top-k (descending; on equal probabilities the lower expert index wins)
 * → optional renormalisation of the k weights → Σ_k w_k · expert_k(x), plus sigmoid(x·Wsgᵀ) · shared_expert(x).
 * The k contributions of a token are summed in fp32 in top-k order (transformers 5.17's grouped_mm backend
 * sums over k in fp32 as well).
 *
 * @param router     Wr [E, H]
 * @param experts    the E routed experts
 * @param sharedGate Wsg [1, H]
 */
public record SparseMoe(Matrix router, List<SwiGluMlp> experts, int topK, boolean normTopkProb,
                        SwiGluMlp sharedExpert, Matrix sharedGate) {

    public SparseMoe {
        experts = List.copyOf(experts);
        if (router.rows() != experts.size()) {
            throw new IllegalArgumentException("router has " + router.rows() + " rows for " + experts.size() + " experts");
        }
        if (topK < 1 || topK > experts.size()) throw new IllegalArgumentException("top-k " + topK);
    }

    /** The experts chosen for one token and their weights, in descending order of probability. */
    public record Routing(int[] experts, float[] weights) {}

    /** Routes one token from its router logits (length E). */
    public Routing route(float[] logits, int offset) {
        int e = experts.size();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < e; i++) max = Math.max(max, logits[offset + i]);
        float[] p = new float[e];
        float sum = 0;
        for (int i = 0; i < e; i++) {
            p[i] = (float) Math.exp(logits[offset + i] - max);
            sum += p[i];
        }
        for (int i = 0; i < e; i++) p[i] /= sum;
        int[] idx = new int[topK];
        float[] w = new float[topK];
        boolean[] taken = new boolean[e];
        for (int k = 0; k < topK; k++) {
            int best = -1;
            for (int i = 0; i < e; i++) {
                if (!taken[i] && (best < 0 || p[i] > p[best])) best = i;  // strict '>' keeps the lowest index on ties
            }
            taken[best] = true;
            idx[k] = best;
            w[k] = p[best];
        }
        if (normTopkProb) {
            float s = 0;
            for (float v : w) s += v;
            for (int k = 0; k < topK; k++) w[k] /= s;
        }
        return new Routing(idx, w);
    }

    public void forward(float[] x, int rows, float[] out) {
        int h = router.cols();
        int e = experts.size();
        float[] logits = new float[rows * e];
        Linear.forward(router, x, 0, rows, logits, 0);
        Routing[] routes = new Routing[rows];
        List<List<int[]>> byExpert = new ArrayList<>(e);   // expert -> (token, k) pairs
        for (int i = 0; i < e; i++) byExpert.add(new ArrayList<>());
        for (int t = 0; t < rows; t++) {
            routes[t] = route(logits, t * e);
            for (int k = 0; k < topK; k++) byExpert.get(routes[t].experts()[k]).add(new int[]{t, k});
        }
        float[] contrib = new float[rows * topK * h];        // [token, k, H], summed in k order below
        IntStream.range(0, e).filter(i -> !byExpert.get(i).isEmpty()).parallel().forEach(i -> {
            List<int[]> pairs = byExpert.get(i);
            int n = pairs.size();
            float[] xs = new float[n * h];
            for (int j = 0; j < n; j++) System.arraycopy(x, pairs.get(j)[0] * h, xs, j * h, h);
            float[] ys = experts.get(i).forward(xs, n);
            for (int j = 0; j < n; j++) {
                int t = pairs.get(j)[0];
                int k = pairs.get(j)[1];
                float wk = routes[t].weights()[k];
                int dst = (t * topK + k) * h;
                for (int c = 0; c < h; c++) contrib[dst + c] = ys[j * h + c] * wk;
            }
        });
        float[] shared = sharedExpert.forward(x, rows);
        float[] gate = new float[rows];
        Linear.forward(sharedGate, x, 0, rows, gate, 0);
        for (int t = 0; t < rows; t++) {
            float sg = Activations.sigmoid(gate[t]);
            for (int c = 0; c < h; c++) {
                float acc = 0;
                for (int k = 0; k < topK; k++) acc += contrib[(t * topK + k) * h + c];
                out[t * h + c] = acc + sg * shared[t * h + c];
            }
        }
    }
}
