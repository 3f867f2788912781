package dev.jnext.gpu;

import dev.jnext.bindings.cublaslt.CublasLt;
import dev.jnext.bindings.cublaslt.cublasLtMatmulHeuristicResult_t;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Dense bf16 GEMM over cuBLASLt with fp32 accumulation.
 *
 * <p>Layout convention (the model's): activations are row-major {@code X[M, K]}, weights are stored as
 * PyTorch/safetensors store Linear weights, row-major {@code W[N, K]} ({@code [out, in]}), and the result is
 * row-major {@code Y[M, N] = alpha · X·Wᵀ + beta · Y}. In cuBLASLt's column-major terms that is
 * {@code Yᵀ(N×M) = op_T(W as K×N) · X as K×M} — the "TN" case its kernels handle best.
 *
 * <p>Row strides: {@code ldx} (≥ K) and {@code ldy} (≥ N) are the elements between rows of X and Y, so a result can
 * be written into a column slice of a wider buffer (e.g. q|k|v side by side) or read from one.
 *
 * <p>The workspace is allocated once (so a matmul is legal inside a stream capture) and the descriptors and
 * algorithm are chosen once per exact (M, N, K, ldx, ldy, beta≠0) and cached, at most {@link #MAX_PLANS} of them
 * (least recently used evicted, its descriptors destroyed). Evicting is safe for captured graphs: a graph holds the
 * launched kernels with their parameters, never cuBLASLt's host descriptors, which are read only while a matmul is
 * enqueued. Pointers must be 16-byte aligned. Not thread-safe: one instance per stream-owning thread.
 */
public final class Gemm implements AutoCloseable {
    /** cuBLASLt's workspace, allocated once so that a matmul may run inside a graph capture. */
    public static final long DEFAULT_WORKSPACE_BYTES = 32L << 20;
    /** Plans kept: enough for every bucket of every projection of a model, bounded for long-running processes. */
    public static final int MAX_PLANS = 256;

    private final Gpu gpu;
    private final DeviceBuffer workspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment alphaBeta;
    private final Map<Shape, Plan> plans = new LinkedHashMap<>(64, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Shape, Plan> eldest) {
            if (size() <= MAX_PLANS) return false;
            eldest.getValue().destroy();
            return true;
        }
    };
    private boolean closed;

    /** What a plan is chosen for: the exact problem, strides included. */
    record Shape(int m, int n, int k, int ldx, int ldy, boolean accumulate) {}

    /** One shape's cuBLASLt descriptors and algorithm, in host memory of its own (freed on eviction). */
    private record Plan(Arena memory, MemorySegment desc, MemorySegment wLayout, MemorySegment xLayout, MemorySegment yLayout,
                        MemorySegment algo) {
        void destroy() {
            CublasLt.cublasLtMatrixLayoutDestroy(wLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(xLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(yLayout);
            CublasLt.cublasLtMatmulDescDestroy(desc);
            memory.close();
        }
    }

    /** A GEMM handle with the {@link #DEFAULT_WORKSPACE_BYTES default workspace}. */
    public Gemm(Gpu gpu) {
        this(gpu, DEFAULT_WORKSPACE_BYTES);
    }

    /** A GEMM handle with a workspace of {@code workspaceBytes}. */
    public Gemm(Gpu gpu, long workspaceBytes) {
        NativeLibraries.requireCublasLt();
        this.gpu = gpu;
        gpu.bindThread();
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
        check(CublasLt.cublasLtCreate(p), "cublasLtCreate");
        this.handle = p.get(ValueLayout.ADDRESS, 0);
        this.alphaBeta = arena.allocate(ValueLayout.JAVA_FLOAT, 2);
        DeviceBuffer ws;
        try {
            ws = gpu.allocate(workspaceBytes, "cuBLASLt workspace");
        } catch (RuntimeException e) {
            CublasLt.cublasLtDestroy(handle);
            arena.close();
            throw e;
        }
        this.workspace = ws;
        gpu.objectCreated();
    }

    /** The cuBLASLt library version, e.g. 130100. */
    public static long libraryVersion() {
        NativeLibraries.requireCublasLt();
        return CublasLt.cublasLtGetVersion();
    }

    /** {@code y[M,N] = x[M,K] · w[N,K]ᵀ} (bf16, fp32 accumulation, dense rows), enqueued on {@code stream}. */
    public void matmul(Stream stream, long x, long w, long y, int m, int n, int k) {
        matmul(stream, x, k, w, y, n, m, n, k, 1f, 0f);
    }

    /** {@code y = alpha · x·wᵀ + beta · y} (dense rows). */
    public void matmul(Stream stream, long x, long w, long y, int m, int n, int k, float alpha, float beta) {
        matmul(stream, x, k, w, y, n, m, n, k, alpha, beta);
    }

    /**
     * {@code y[M,N] = x[M,K] · w[N,K]ᵀ} with row strides {@code ldx} (elements between rows of x, ≥ K) and {@code ldy}
     * (≥ N), both multiples of 8: x may be a column slice of a wider buffer and y is written into one.
     */
    public void matmul(Stream stream, long x, int ldx, long w, long y, int ldy, int m, int n, int k) {
        matmul(stream, x, ldx, w, y, ldy, m, n, k, 1f, 0f);
    }

    /** {@code y = alpha · x·wᵀ + beta · y} with row strides (see {@link #matmul(Stream, long, int, long, long, int, int, int, int)}). */
    public void matmul(Stream stream, long x, int ldx, long w, long y, int ldy, int m, int n, int k, float alpha, float beta) {
        if (closed) throw new IllegalStateException("Gemm is closed");
        checkShape(x, ldx, w, y, ldy, m, n, k);
        Plan plan = plan(new Shape(m, n, k, ldx, ldy, beta != 0f));
        alphaBeta.setAtIndex(ValueLayout.JAVA_FLOAT, 0, alpha);
        alphaBeta.setAtIndex(ValueLayout.JAVA_FLOAT, 1, beta);
        MemorySegment xs = MemorySegment.ofAddress(x), ws = MemorySegment.ofAddress(w), ys = MemorySegment.ofAddress(y);
        int rc = CublasLt.cublasLtMatmul(handle, plan.desc, alphaBeta, ws, plan.wLayout, xs, plan.xLayout,
                alphaBeta.asSlice(4, 4), ys, plan.yLayout, ys, plan.yLayout, plan.algo,
                MemorySegment.ofAddress(workspace.address()), workspace.bytes(), stream.handle());
        if (rc != 0) throw error(rc, "cublasLtMatmul(M=" + m + ", N=" + n + ", K=" + k + ", ldx=" + ldx + ", ldy=" + ldy + ")");
    }

    /** Host-side checks of one matmul's shape, strides and alignment, naming the value. */
    static void checkShape(long x, int ldx, long w, long y, int ldy, int m, int n, int k) {
        if (m <= 0 || n <= 0 || k <= 0) throw new IllegalArgumentException("GEMM shape must be positive: M=" + m + " N=" + n + " K=" + k);
        if (m >= 1 << 21 || n >= 1 << 21 || k >= 1 << 20) throw new IllegalArgumentException("GEMM shape too large: M=" + m + " N=" + n + " K=" + k);
        if (ldx < k || ldx % 8 != 0) {
            throw new IllegalArgumentException("GEMM: row stride of x (ldx " + ldx + ") must be a multiple of 8 and >= K " + k);
        }
        if (ldy < n || ldy % 8 != 0) {
            throw new IllegalArgumentException("GEMM: row stride of y (ldy " + ldy + ") must be a multiple of 8 and >= N " + n);
        }
        if (((x | w | y) & 15) != 0) throw new IllegalArgumentException("GEMM operands must be 16-byte aligned");
    }

    /** Number of distinct shapes planned and still cached (at most {@link #MAX_PLANS}). */
    public int cachedPlans() {
        return plans.size();
    }

    private Plan plan(Shape shape) {
        Plan plan = plans.get(shape);
        if (plan == null) {
            plan = createPlan(shape);
            plans.put(shape, plan);
        }
        return plan;
    }

    private Plan createPlan(Shape shape) {
        gpu.bindThread();
        int m = shape.m(), n = shape.n(), k = shape.k();
        Arena memory = Arena.ofShared();
        MemorySegment desc = null, wLayout = null, xLayout = null, yLayout = null;
        try {
            MemorySegment p = memory.allocate(ValueLayout.ADDRESS);
            check(CublasLt.cublasLtMatmulDescCreate(p, CublasLt.CUBLAS_COMPUTE_32F(), CublasLt.CUDA_R_32F()), "cublasLtMatmulDescCreate");
            desc = p.get(ValueLayout.ADDRESS, 0);
            MemorySegment op = memory.allocate(ValueLayout.JAVA_INT);
            op.set(ValueLayout.JAVA_INT, 0, CublasLt.CUBLAS_OP_T());
            check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA(), op, 4), "cublasLtMatmulDescSetAttribute(TRANSA)");
            MemorySegment opN = memory.allocate(ValueLayout.JAVA_INT);
            opN.set(ValueLayout.JAVA_INT, 0, CublasLt.CUBLAS_OP_N());
            check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB(), opN, 4), "cublasLtMatmulDescSetAttribute(TRANSB)");
            wLayout = layout(memory, k, n, k);
            xLayout = layout(memory, k, m, shape.ldx());
            yLayout = layout(memory, n, m, shape.ldy());
            MemorySegment algo = chooseAlgorithm(memory, desc, wLayout, xLayout, yLayout, shape);
            return new Plan(memory, desc, wLayout, xLayout, yLayout, algo);
        } catch (RuntimeException e) {
            if (yLayout != null) CublasLt.cublasLtMatrixLayoutDestroy(yLayout);
            if (xLayout != null) CublasLt.cublasLtMatrixLayoutDestroy(xLayout);
            if (wLayout != null) CublasLt.cublasLtMatrixLayoutDestroy(wLayout);
            if (desc != null) CublasLt.cublasLtMatmulDescDestroy(desc);
            memory.close();
            throw e;
        }
    }

    private MemorySegment chooseAlgorithm(Arena memory, MemorySegment desc, MemorySegment wLayout, MemorySegment xLayout,
                                          MemorySegment yLayout, Shape shape) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(CublasLt.cublasLtMatmulPreferenceCreate(p), "cublasLtMatmulPreferenceCreate");
            MemorySegment pref = p.get(ValueLayout.ADDRESS, 0);
            try {
                MemorySegment wsBytes = a.allocate(ValueLayout.JAVA_LONG);
                wsBytes.set(ValueLayout.JAVA_LONG, 0, workspace.bytes());
                check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES(), wsBytes, 8),
                        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
                MemorySegment result = a.allocate(cublasLtMatmulHeuristicResult_t.layout());
                MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
                int rc = CublasLt.cublasLtMatmulAlgoGetHeuristic(handle, desc, wLayout, xLayout, yLayout, yLayout, pref, 1, result, count);
                String what = "M=" + shape.m() + ", N=" + shape.n() + ", K=" + shape.k() + ", ldx=" + shape.ldx() + ", ldy=" + shape.ldy();
                if (rc != 0) throw error(rc, "cublasLtMatmulAlgoGetHeuristic(" + what + ")");
                if (count.get(ValueLayout.JAVA_INT, 0) == 0) {
                    throw new CudaException("cublasLtMatmulAlgoGetHeuristic", 0, "NO_ALGORITHM", "no cuBLASLt algorithm for bf16 " + what);
                }
                MemorySegment algo = memory.allocate(cublasLtMatmulHeuristicResult_t.algo$layout());
                algo.copyFrom(cublasLtMatmulHeuristicResult_t.algo(result));
                return algo;
            } finally {
                CublasLt.cublasLtMatmulPreferenceDestroy(pref);
            }
        }
    }

    private static MemorySegment layout(Arena memory, long rows, long cols, long ld) {
        MemorySegment p = memory.allocate(ValueLayout.ADDRESS);
        check(CublasLt.cublasLtMatrixLayoutCreate(p, CublasLt.CUDA_R_16BF(), rows, cols, ld), "cublasLtMatrixLayoutCreate");
        return p.get(ValueLayout.ADDRESS, 0);
    }

    private static void check(int status, String call) {
        if (status != 0) throw error(status, call);
    }

    private static CudaException error(int status, String call) {
        String name;
        try {
            name = CublasLt.cublasLtGetStatusName(status).reinterpret(128).getString(0);
        } catch (RuntimeException e) {
            name = "CUBLAS_STATUS_" + status;
        }
        return new CudaException(call, status, name, null);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        gpu.bindThread();
        for (Plan plan : plans.values()) plan.destroy();
        plans.clear();
        int rc = CublasLt.cublasLtDestroy(handle);
        workspace.close();
        arena.close();
        gpu.objectClosed();
        check(rc, "cublasLtDestroy");
    }
}
