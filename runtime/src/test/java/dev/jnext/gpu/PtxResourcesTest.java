package dev.jnext.gpu;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static dev.jnext.gpu.ParamType.F32;
import static dev.jnext.gpu.ParamType.U32;
import static dev.jnext.gpu.ParamType.U64;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The PTX built by kernels-ptx is on the classpath, for compute_90, with the entry points and signatures the launchers use. */
class PtxResourcesTest {
    private static final Map<String, Map<String, List<ParamType>>> EXPECTED = Map.ofEntries(
            Map.entry("rmsnorm", Map.of(
                    "rmsnorm_bf16", List.of(U64, U64, U64, U32, U32, F32),
                    "add_rmsnorm_bf16", List.of(U64, U64, U64, U64, U32, U32, F32))),
            Map.entry("gated_rmsnorm", Map.of(
                    "gated_rmsnorm_bf16_r1", List.of(U64, U64, U64, U64, U32, U32, F32),
                    "gated_rmsnorm_bf16_r2", List.of(U64, U64, U64, U64, U32, U32, F32),
                    "gated_rmsnorm_bf16_r4", List.of(U64, U64, U64, U64, U32, U32, F32))),
            Map.entry("silu_mul", Map.of("silu_mul_bf16", List.of(U64, U64, U32, U32))),
            Map.entry("bench", Map.of("empty_kernel", List.of(U64, U32))),
            Map.entry("moe_route", Map.of("moe_route_topk", List.of(U64, U32, U64, U64, U32, U32, U32, U32))),
            Map.entry("moe_align", Map.of(
                    "moe_align_count", List.of(U64, U64, U32, U32),
                    "moe_align_offsets", List.of(U64, U64, U64, U64, U32, U32, U32, U32),
                    "moe_align_scatter", List.of(U64, U64, U64, U64, U64, U32, U32))),
            Map.entry("moe_gemm", Map.of(
                    "moe_gemm_gate_up", List.of(U64, U64, U64, U64, U64, U32, U32, U32),
                    "moe_gemm_down", List.of(U64, U64, U64, U64, U64, U64, U32, U32))),
            Map.entry("moe_combine", Map.of("moe_combine", List.of(U64, U64, U64, U32, U64, U32, U32, U32))),
            Map.entry("moe_decode", Map.of(
                    "moe_decode_gate_up", List.of(U64, U64, U64, U64, U64, U32, U32, U32, U32),
                    "moe_decode_down", List.of(U64, U64, U64, U64, U64, U64, U32, U64, U32, U32, U32, U32))),
            Map.entry("embedding", Map.of("embedding_gather", List.of(U64, U64, U64, U32, U32, U32))),
            Map.entry("sampling", Map.of(
                    "argmax_partial", List.of(U64, U32, U32, U32, U64),
                    "argmax_final", List.of(U64, U32, U64),
                    "philox_blocks", List.of(U64, U64, U64, U32),
                    "sample_rows", List.of(U64, U32, U32, U64, U64, U64))));

    @Test
    void everyModuleHasItsEntriesWithTheExpectedSignatures() {
        EXPECTED.forEach((module, entries) -> {
            String ptx = PtxModule.readPtx(module);
            assertTrue(ptx.contains(".target sm_90"), module + ".ptx targets sm_90");
            Map<String, List<ParamType>> parsed = PtxEntries.parse(ptx);
            assertEquals(entries, parsed, module + ".ptx entries");
        });
    }

    @Test
    void missingModuleIsAClearError() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> PtxModule.readPtx("no_such_kernel"));
        assertTrue(e.getMessage().contains("dev/jnext/kernels/no_such_kernel.ptx"), e.getMessage());
    }

    @Test
    void parserReadsParamsAndRejectsAggregates() {
        String ptx = """
                .visible .entry f(
                    .param .u64 f_param_0,
                    .param .f32 f_param_1
                )
                .visible .entry g(
                    .param .align 8 .b8 g_param_0[16]
                )""";
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PtxEntries.parse(ptx));
        assertTrue(e.getMessage().contains("kernel g"), e.getMessage());
        assertEquals(Map.of("f", List.of(U64, F32)), PtxEntries.parse(ptx.substring(0, ptx.indexOf(".visible .entry g"))));
    }
}
