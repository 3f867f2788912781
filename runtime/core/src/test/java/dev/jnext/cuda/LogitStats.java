package dev.jnext.cuda;

/** Distribution distances between two sets of logits rows [rows, vocab] (double precision). */
final class LogitStats {
    private LogitStats() {}

    /** Mean KL(softmax(p) || softmax(q)) and top-1 agreement over {@code rows} rows starting at pOff / qOff rows. */
    record Figures(double meanKl, double top1, int rows) {
        @Override
        public String toString() {
            return String.format("KL %.5f, top-1 %.2f%% over %d positions", meanKl, 100 * top1, rows);
        }
    }

    static Figures compare(float[] p, int pRow, float[] q, int qRow, int rows, int vocab) {
        double[] kl = new double[rows];
        boolean[] agree = new boolean[rows];
        java.util.stream.IntStream.range(0, rows).parallel().forEach(r -> {
            double[] lp = new double[vocab], lq = new double[vocab];
            int po = (pRow + r) * vocab, qo = (qRow + r) * vocab;
            logSoftmax(p, po, vocab, lp);
            logSoftmax(q, qo, vocab, lq);
            double s = 0;
            for (int i = 0; i < vocab; i++) s += Math.exp(lp[i]) * (lp[i] - lq[i]);
            kl[r] = Double.isFinite(s) ? s : Double.POSITIVE_INFINITY;  // NaN logits never pass
            agree[r] = argmax(p, po, vocab) == argmax(q, qo, vocab);
        });
        double sum = 0;
        int same = 0;
        for (int r = 0; r < rows; r++) {
            sum += kl[r];
            if (agree[r]) same++;
        }
        return new Figures(sum / rows, same / (double) rows, rows);
    }

    static double entropy(float[] p, int rows, int vocab) {
        double[] lp = new double[vocab];
        double h = 0;
        for (int r = 0; r < rows; r++) {
            logSoftmax(p, r * vocab, vocab, lp);
            for (int i = 0; i < vocab; i++) h -= Math.exp(lp[i]) * lp[i];
        }
        return h / rows;
    }

    static void logSoftmax(float[] x, int off, int n, double[] out) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(x[off + i] - max);
        double lse = max + Math.log(sum);
        for (int i = 0; i < n; i++) out[i] = x[off + i] - lse;
    }

    static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[off + i] > x[off + best]) best = i;
        return best;
    }
}
