package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CUgraphExecUpdateResultInfo_st;
import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * A captured stream region: capture → instantiate → replay (many times) → update in place when the
 * topology is unchanged → destroy. Captured work must not allocate, synchronise or read device values
 * on the host; the buffers it touches must stay at fixed addresses for as long as the graph lives.
 */
public final class CudaGraph implements AutoCloseable {
    /** Work to record into a graph, enqueued on the capturing stream. */
    @FunctionalInterface
    public interface Body {
        /** Enqueues the work on {@code stream}, which is capturing. */
        void enqueue(Stream stream);
    }

    private final Gpu gpu;
    private MemorySegment graph;
    private MemorySegment exec;
    private int nodeCount;

    private CudaGraph(Gpu gpu, MemorySegment graph, MemorySegment exec) {
        this.gpu = gpu;
        this.graph = graph;
        this.exec = exec;
        this.nodeCount = countNodes(graph);
    }

    /** Records what {@code body} enqueues on {@code stream} (thread-local capture mode) and instantiates it. */
    public static CudaGraph capture(Stream stream, Body body) {
        Gpu gpu = stream.gpu();
        MemorySegment g = record(stream, body);
        MemorySegment e;
        try {
            e = instantiate(g);
        } catch (RuntimeException ex) {
            CudaDriver.cuGraphDestroy(g);
            throw ex;
        }
        gpu.objectCreated();
        return new CudaGraph(gpu, g, e);
    }

    private static MemorySegment record(Stream stream, Body body) {
        stream.gpu().bindThread();
        Cuda.check(CudaDriver.cuStreamBeginCapture_v2(stream.handle(), CudaDriver.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL()),
                "cuStreamBeginCapture_v2");
        RuntimeException failure = null;
        try {
            body.enqueue(stream);
        } catch (RuntimeException ex) {
            failure = ex;
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            int rc = CudaDriver.cuStreamEndCapture(stream.handle(), p);
            MemorySegment g = p.get(ValueLayout.ADDRESS, 0);
            if (failure != null) {
                if (!g.equals(MemorySegment.NULL)) CudaDriver.cuGraphDestroy(g);
                throw failure;
            }
            if (rc != 0) {
                if (!g.equals(MemorySegment.NULL)) CudaDriver.cuGraphDestroy(g);
                throw Cuda.error(rc, "cuStreamEndCapture", "the captured region did something capture forbids "
                        + "(allocation, synchronisation, a legacy-stream call)");
            }
            return g;
        }
    }

    private static MemorySegment instantiate(MemorySegment g) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(CudaDriver.cuGraphInstantiateWithFlags(p, g, 0L), "cuGraphInstantiateWithFlags");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    private static int countNodes(MemorySegment g) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(ValueLayout.JAVA_LONG);
            Cuda.check(CudaDriver.cuGraphGetNodes(g, MemorySegment.NULL, n), "cuGraphGetNodes");
            return (int) n.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Enqueues one replay of the whole graph on {@code stream}. */
    public void replay(Stream stream) {
        Cuda.check(CudaDriver.cuGraphLaunch(exec(), stream.handle()), "cuGraphLaunch");
    }

    /** Uploads the executable graph ahead of its first replay (moves that cost out of timed regions). */
    public void upload(Stream stream) {
        Cuda.check(CudaDriver.cuGraphUpload(exec(), stream.handle()), "cuGraphUpload");
    }

    /**
     * Re-records {@code body} and updates the executable graph in place when only parameters changed;
     * otherwise re-instantiates. Returns true when the in-place update succeeded.
     */
    public boolean update(Stream stream, Body body) {
        MemorySegment fresh = record(stream, body);
        boolean inPlace;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment info = a.allocate(CUgraphExecUpdateResultInfo_st.layout());
            int rc = CudaDriver.cuGraphExecUpdate_v2(exec(), fresh, info);
            inPlace = rc == 0 && CUgraphExecUpdateResultInfo_st.result(info) == CudaDriver.CU_GRAPH_EXEC_UPDATE_SUCCESS();
        }
        if (!inPlace) {
            MemorySegment e;
            try {
                e = instantiate(fresh);
            } catch (RuntimeException ex) {
                CudaDriver.cuGraphDestroy(fresh);
                throw ex;
            }
            CudaDriver.cuGraphExecDestroy(exec);
            exec = e;
        }
        CudaDriver.cuGraphDestroy(graph);
        graph = fresh;
        nodeCount = countNodes(fresh);
        return inPlace;
    }

    /** Kernel, memcpy and memset nodes in the graph. */
    public int nodeCount() {
        return nodeCount;
    }

    /** Writes the graph in Graphviz form (for debugging a capture). */
    public void writeDot(Path path) {
        try (Arena a = Arena.ofConfined()) {
            Cuda.check(CudaDriver.cuGraphDebugDotPrint(graph(), a.allocateFrom(path.toString()),
                    CudaDriver.CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE()), "cuGraphDebugDotPrint");
        }
    }

    private MemorySegment exec() {
        if (exec == null) throw new IllegalStateException("graph is closed");
        return exec;
    }

    private MemorySegment graph() {
        if (graph == null) throw new IllegalStateException("graph is closed");
        return graph;
    }

    @Override
    public void close() {
        if (exec == null) return;
        gpu.bindThread();
        int rc1 = CudaDriver.cuGraphExecDestroy(exec);
        int rc2 = CudaDriver.cuGraphDestroy(graph);
        exec = null;
        graph = null;
        gpu.objectClosed();
        Cuda.check(rc1, "cuGraphExecDestroy");
        Cuda.check(rc2, "cuGraphDestroy");
    }
}
