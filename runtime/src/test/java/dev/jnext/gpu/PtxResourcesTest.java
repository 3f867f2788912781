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
    private static final Map<String, Map<String, List<ParamType>>> EXPECTED = Map.of(
            "rmsnorm", Map.of(
                    "rmsnorm_bf16", List.of(U64, U64, U64, U32, U32, F32),
                    "add_rmsnorm_bf16", List.of(U64, U64, U64, U64, U32, U32, F32)),
            "gated_rmsnorm", Map.of(
                    "gated_rmsnorm_bf16_r1", List.of(U64, U64, U64, U64, U32, U32, F32),
                    "gated_rmsnorm_bf16_r2", List.of(U64, U64, U64, U64, U32, U32, F32),
                    "gated_rmsnorm_bf16_r4", List.of(U64, U64, U64, U64, U32, U32, F32)),
            "silu_mul", Map.of("silu_mul_bf16", List.of(U64, U64, U32, U32)),
            "bench", Map.of("empty_kernel", List.of(U64, U32)),
            "gdn_recurrent", gdnRecurrent(),
            "causal_conv1d", causalConv1d(),
            "gdn_gating", Map.of("gdn_split_gating", List.of(U64, U64, U64, U64, U64, U64, U64, U64, U32, U32, U32, U32, U32)));

    /** qkv, beta|ba, g, A_log, dt_bias, state, slots, out; batch, Hk, Hv, dk, dv: for both paths and the three gate modes. */
    private static Map<String, List<ParamType>> gdnRecurrent() {
        List<ParamType> sig = List.of(U64, U64, U64, U64, U64, U64, U64, U64, U32, U32, U32, U32, U32);
        Map<String, List<ParamType>> m = new java.util.HashMap<>();
        for (String path : List.of("k128", "any")) for (String mode : List.of("f32", "bf16", "fused")) m.put("gdn_recurrent_" + path + "_" + mode, sig);
        return m;
    }

    /** prefill: x, w, state, cu_seqlens, slots, out, batch, channels, chunk; update: x, w, state, slots, out, channels; K = 2, 3, 4. */
    private static Map<String, List<ParamType>> causalConv1d() {
        Map<String, List<ParamType>> m = new java.util.HashMap<>();
        for (int k = 2; k <= 4; k++) {
            m.put("causal_conv1d_prefill_k" + k, List.of(U64, U64, U64, U64, U64, U64, U32, U32, U32));
            m.put("causal_conv1d_update_k" + k, List.of(U64, U64, U64, U64, U64, U32));
        }
        return m;
    }

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
