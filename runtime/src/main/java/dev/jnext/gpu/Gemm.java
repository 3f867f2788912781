package dev.jnext.gpu;

import dev.jnext.bindings.cublaslt.CublasLt;
import dev.jnext.bindings.cublaslt.cublasLtMatmulHeuristicResult_t;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;

/**
 * Dense bf16 GEMM over cuBLASLt with fp32 accumulation.
 *
 * <p>Layout convention (the model's): activations are row-major {@code X[M, K]}, weights are stored as
 * PyTorch/safetensors store Linear weights, row-major {@code W[N, K]} ({@code [out, in]}), and the result is
 * row-major {@code Y[M, N] = alpha · X·Wᵀ + beta · Y}. In cuBLASLt's column-major terms that is
 * {@code Yᵀ(N×M) = op_T(W as K×N) · X as K×M} — the "TN" case its kernels handle best.
 *
 * <p>The workspace is allocated once (so a matmul is legal inside a stream capture) and the descriptors and
 * algorithm are chosen once per (M, N, K, beta≠0) and cached. Pointers must be 16-byte aligned. Not
 * thread-safe: one instance per stream-owning thread.
 */
public final class Gemm implements AutoCloseable {
    public static final long DEFAULT_WORKSPACE_BYTES = 32L << 20;

    private final Gpu gpu;
    private final DeviceBuffer workspace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment handle;
    private final MemorySegment alphaBeta;
    private final Map<Long, Plan> plans = new HashMap<>();
    private boolean closed;

    private record Plan(MemorySegment desc, MemorySegment wLayout, MemorySegment xLayout, MemorySegment yLayout, MemorySegment algo) {}

    public Gemm(Gpu gpu) {
        this(gpu, DEFAULT_WORKSPACE_BYTES);
    }

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

    /** {@code y[M,N] = x[M,K] · w[N,K]ᵀ} (bf16, fp32 accumulation), enqueued on {@code stream}. */
    public void matmul(Stream stream, long x, long w, long y, int m, int n, int k) {
        matmul(stream, x, w, y, m, n, k, 1f, 0f);
    }

    /** {@code y = alpha · x·wᵀ + beta · y}. */
    public void matmul(Stream stream, long x, long w, long y, int m, int n, int k, float alpha, float beta) {
        if (closed) throw new IllegalStateException("Gemm is closed");
        if (m <= 0 || n <= 0 || k <= 0) throw new IllegalArgumentException("GEMM shape must be positive: M=" + m + " N=" + n + " K=" + k);
        if (m >= 1 << 21 || n >= 1 << 21 || k >= 1 << 20) throw new IllegalArgumentException("GEMM shape too large: M=" + m + " N=" + n + " K=" + k);
        if (((x | w | y) & 15) != 0) throw new IllegalArgumentException("GEMM operands must be 16-byte aligned");
        Plan plan = plan(m, n, k, beta != 0f);
        alphaBeta.setAtIndex(ValueLayout.JAVA_FLOAT, 0, alpha);
        alphaBeta.setAtIndex(ValueLayout.JAVA_FLOAT, 1, beta);
        MemorySegment xs = MemorySegment.ofAddress(x), ws = MemorySegment.ofAddress(w), ys = MemorySegment.ofAddress(y);
        int rc = CublasLt.cublasLtMatmul(handle, plan.desc, alphaBeta, ws, plan.wLayout, xs, plan.xLayout,
                alphaBeta.asSlice(4, 4), ys, plan.yLayout, ys, plan.yLayout, plan.algo,
                MemorySegment.ofAddress(workspace.address()), workspace.bytes(), stream.handle());
        if (rc != 0) throw error(rc, "cublasLtMatmul(M=" + m + ", N=" + n + ", K=" + k + ")");
    }

    /** Number of distinct shapes planned so far. */
    public int cachedPlans() {
        return plans.size();
    }

    private Plan plan(int m, int n, int k, boolean accumulate) {
        long key = ((long) m << 42) ^ ((long) n << 21) ^ ((long) k << 1) ^ (accumulate ? 1 : 0);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = createPlan(m, n, k);
            plans.put(key, plan);
        }
        return plan;
    }

    private Plan createPlan(int m, int n, int k) {
        gpu.bindThread();
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
        check(CublasLt.cublasLtMatmulDescCreate(p, CublasLt.CUBLAS_COMPUTE_32F(), CublasLt.CUDA_R_32F()), "cublasLtMatmulDescCreate");
        MemorySegment desc = p.get(ValueLayout.ADDRESS, 0);
        MemorySegment op = arena.allocate(ValueLayout.JAVA_INT);
        op.set(ValueLayout.JAVA_INT, 0, CublasLt.CUBLAS_OP_T());
        check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSA(), op, 4), "cublasLtMatmulDescSetAttribute(TRANSA)");
        MemorySegment opN = arena.allocate(ValueLayout.JAVA_INT);
        opN.set(ValueLayout.JAVA_INT, 0, CublasLt.CUBLAS_OP_N());
        check(CublasLt.cublasLtMatmulDescSetAttribute(desc, CublasLt.CUBLASLT_MATMUL_DESC_TRANSB(), opN, 4), "cublasLtMatmulDescSetAttribute(TRANSB)");
        MemorySegment wLayout = layout(k, n, k);
        MemorySegment xLayout = layout(k, m, k);
        MemorySegment yLayout = layout(n, m, n);

        check(CublasLt.cublasLtMatmulPreferenceCreate(p), "cublasLtMatmulPreferenceCreate");
        MemorySegment pref = p.get(ValueLayout.ADDRESS, 0);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment wsBytes = a.allocate(ValueLayout.JAVA_LONG);
            wsBytes.set(ValueLayout.JAVA_LONG, 0, workspace.bytes());
            check(CublasLt.cublasLtMatmulPreferenceSetAttribute(pref, CublasLt.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES(), wsBytes, 8),
                    "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
            MemorySegment result = a.allocate(cublasLtMatmulHeuristicResult_t.layout());
            MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
            int rc = CublasLt.cublasLtMatmulAlgoGetHeuristic(handle, desc, wLayout, xLayout, yLayout, yLayout, pref, 1, result, count);
            if (rc != 0 || count.get(ValueLayout.JAVA_INT, 0) == 0) {
                throw rc != 0 ? error(rc, "cublasLtMatmulAlgoGetHeuristic(M=" + m + ", N=" + n + ", K=" + k + ")")
                        : new CudaException("cublasLtMatmulAlgoGetHeuristic", 0, "NO_ALGORITHM",
                        "no cuBLASLt algorithm for bf16 M=" + m + " N=" + n + " K=" + k);
            }
            MemorySegment algo = arena.allocate(cublasLtMatmulHeuristicResult_t.algo$layout());
            algo.copyFrom(cublasLtMatmulHeuristicResult_t.algo(result));
            return new Plan(desc, wLayout, xLayout, yLayout, algo);
        } finally {
            CublasLt.cublasLtMatmulPreferenceDestroy(pref);
        }
    }

    private MemorySegment layout(long rows, long cols, long ld) {
        MemorySegment p = arena.allocate(ValueLayout.ADDRESS);
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
        for (Plan plan : plans.values()) {
            CublasLt.cublasLtMatrixLayoutDestroy(plan.wLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(plan.xLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(plan.yLayout);
            CublasLt.cublasLtMatmulDescDestroy(plan.desc);
        }
        plans.clear();
        int rc = CublasLt.cublasLtDestroy(handle);
        workspace.close();
        arena.close();
        gpu.objectClosed();
        check(rc, "cublasLtDestroy");
    }
}
