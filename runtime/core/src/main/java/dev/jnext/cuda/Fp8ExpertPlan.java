package dev.jnext.cuda;

import dev.jnext.cuda.WeightImage.Piece;
import dev.jnext.cuda.WeightImage.Target;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.model.weights.LayerWeights.Mlp;
import dev.jnext.model.weights.LayerWeights.Moe;
import dev.jnext.model.weights.Matrix;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A layer's experts kept in FP8: every routed expert matrix (and the shared expert's, when there is one) FP8 in 128 ×
 * 128 blocks, each gate|up pair blocked the same way across the layer — as two matrices (their own grids, split I)
 * or as one (a fused stack's per-expert grid shared by the gate and up halves, split 2I). Anything else (a
 * modules_to_not_convert list keeping some experts in bf16, say) is dequantized to bf16 like the other weights. With
 * {@code quantize}, unquantized experts are block-quantized while they stream ({@link Piece.Quantized}).
 */
record Fp8ExpertPlan(List<Mlp> experts, Mlp shared, int gateUpSplit, int sharedSplit, boolean quantize) {
    /** Every routed (and shared) expert matrix unquantized: what {@link #quantized} can quantize while it streams. */
    static boolean unquantized(Moe moe, boolean hasShared) {
        Stream<Mlp> all = hasShared
                ? Stream.concat(moe.experts().stream(), Stream.of(moe.sharedExpert()))
                : moe.experts().stream();
        return all.allMatch(x -> x.gate().scales() == null && x.up().scales() == null && x.down().scales() == null);
    }

    /** Unquantized experts quantized while they stream, gate and up as separate matrices (the hub's blocking, split I). */
    static Fp8ExpertPlan quantized(Moe moe, boolean hasShared) {
        return new Fp8ExpertPlan(moe.experts(), hasShared ? moe.sharedExpert() : null, moe.experts().getFirst().gate().rows(),
                hasShared ? moe.sharedExpert().gate().rows() : 0, true);
    }

    /** The plan of experts stored in FP8, or null when they are not all FP8 as the kernels read them. */
    static Fp8ExpertPlan of(Moe moe, boolean hasShared) {
        Integer split = null;
        for (Mlp x : moe.experts()) {
            Integer s = gateUpSplit(x);
            if (s == null || !wholeGrid(x.down()) || (split != null && !split.equals(s))) return null;
            split = s;
        }
        Integer sharedSplit = null;
        if (hasShared) {
            sharedSplit = gateUpSplit(moe.sharedExpert());
            if (sharedSplit == null || !wholeGrid(moe.sharedExpert().down())) return null;
        }
        return split == null ? null : new Fp8ExpertPlan(moe.experts(), hasShared ? moe.sharedExpert() : null, split,
                sharedSplit == null ? 0 : sharedSplit, false);
    }

    /** I when gate and up carry their own whole grids, 2I when they are the halves of one grid; null: not FP8 as such. */
    private static Integer gateUpSplit(Mlp x) {
        Matrix g = x.gate(), u = x.up();
        if (g.scales() == null || u.scales() == null || g.rows() != u.rows() || g.cols() != u.cols()) return null;
        if (wholeGrid(g) && wholeGrid(u)) return g.rows();
        var gs = g.scales();
        var us = u.scales();
        boolean halves = gs.values() == us.values() && gs.firstRow() == 0 && us.firstRow() == g.rows()
                && blocks128(gs) && gs.gridRows() == blocks(2 * g.rows()) && gs.gridCols() == blocks(g.cols());
        return halves ? 2 * g.rows() : null;
    }

    /** FP8 with its own 128 × 128 grid covering exactly its rows. */
    private static boolean wholeGrid(Matrix m) {
        var s = m.scales();
        return s != null && blocks128(s) && s.firstRow() == 0 && s.gridRows() == blocks(m.rows()) && s.gridCols() == blocks(m.cols());
    }

    private static boolean blocks128(dev.jnext.model.weights.BlockScales s) {
        return s.blockRows() == 128 && s.blockCols() == 128;
    }

    private static int blocks(int n) {
        return (n + 127) / 128;
    }

    ModelImage.MoeWeights add(WeightImage img, String p, long routerOff) {
        List<Piece> gateUp = new ArrayList<>(), gateUpScales = new ArrayList<>(), down = new ArrayList<>(), downScales = new ArrayList<>();
        for (Mlp x : experts) {
            gateUp.add(values(x.gate()));
            gateUp.add(values(x.up()));
            gateUpScales.addAll(gateUpScales(x, gateUpSplit));
            down.add(values(x.down()));
            downScales.add(scales(x.down()));
        }
        String kind = quantize ? " (FP8, quantized while streaming)" : " (FP8)";
        long gu = img.add(p + "experts.gate_up" + kind, Target.FP8, gateUp);
        long gus = img.add(p + "experts.gate_up scales", Target.F32, gateUpScales);
        long dn = img.add(p + "experts.down" + kind, Target.FP8, down);
        long dns = img.add(p + "experts.down scales", Target.F32, downScales);
        long sgu = 0, sgus = 0, sd = 0, sds = 0;
        if (shared != null) {
            sgu = img.add(p + "shared_expert.gate_proj|up_proj" + kind, Target.FP8, values(shared.gate()), values(shared.up()));
            sgus = img.add(p + "shared_expert.gate_proj|up_proj scales", Target.F32, gateUpScales(shared, sharedSplit));
            sd = img.add(p + "shared_expert.down_proj" + kind, Target.FP8, values(shared.down()));
            sds = img.add(p + "shared_expert.down_proj scales", Target.F32, scales(shared.down()));
        }
        return new ModelImage.MoeWeights(routerOff, gu, dn, sgu, sd, new GpuSparseMoe.Fp8Scales(gus, gateUpSplit, dns, sgus, sharedSplit, sds));
    }

    /** The matrix's e4m3 codes: as stored, or quantized while they stream. */
    private Piece values(Matrix m) {
        return quantize ? new Piece.Quantized(m, false) : new Piece.Fp8Values(m);
    }

    /** The matrix's whole block grid: as stored, or computed while it streams. */
    private Piece scales(Matrix m) {
        return quantize ? new Piece.Quantized(m, true) : new Piece.Floats(m.scales().values());
    }

    /** The gate|up stack's grid: the gate's then the up's (split I), or the one grid they share (split 2I). */
    private List<Piece> gateUpScales(Mlp x, int split) {
        return split == x.gate().rows() ? List.of(scales(x.gate()), scales(x.up())) : List.of(scales(x.gate()));
    }
}
