package dev.jnext.gpu;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Tag;
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
    private static final List<ParamType> PREFILL = List.of(U64, U64, U64, U64, U32, U64, U64, U32, U32, U64, U64, U32, U32, U32, U32, F32);
    private static final List<ParamType> DECODE = List.of(U64, U64, U64, U64, U32, U64, U32, U32, U32, U32, F32, U64, U64);
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
                    "moe_gemm_gate_up_n128", List.of(U64, U64, U64, U64, U64, U32, U32, U32),
                    "moe_gemm_gate_up_n256", List.of(U64, U64, U64, U64, U64, U32, U32, U32),
                    "moe_gemm_down_n128", List.of(U64, U64, U64, U64, U64, U64, U32, U32),
                    "moe_gemm_down_n256", List.of(U64, U64, U64, U64, U64, U64, U32, U32))),
            Map.entry("moe_gemm_sm90a", Map.of(
                    "moe_gemm_gate_up_wgmma", List.of(U64, U64, U64, U64, U64, U32, U32, U32),
                    "moe_gemm_down_wgmma", List.of(U64, U64, U64, U64, U64, U64, U32, U32))),
            Map.entry("moe_combine", Map.of("moe_combine", List.of(U64, U64, U32, U64, U64, U32, U64, U32, U32, U32))),
            Map.entry("moe_decode", Map.of(
                    "moe_decode_gate_up", List.of(U64, U64, U64, U64, U64, U32, U32, U32, U32, U32),
                    "moe_decode_down", List.of(U64, U64, U64, U64, U64, U64, U32, U64, U64, U64, U32, U32, U32, U32, U32),
                    "moe_decode_gate_up_fp8", List.of(U64, U64, U64, U64, U32, U64, U64, U32, U64, U32, U32, U32, U32, U32),
                    "moe_decode_down_fp8", List.of(U64, U64, U64, U64, U64, U64, U64, U64, U32, U64, U64, U64, U32, U32, U32, U32,
                            U32))),
            Map.entry("fp8_dequant", Map.of("fp8_dequant_bf16", List.of(U64, U64, U64, U32, U32, U32, U32))),
            Map.entry("embedding", Map.of("embedding_gather", List.of(U64, U64, U64, U32, U32, U32))),
            Map.entry("sampling", Map.of(
                    "argmax_rows", List.of(U64, U32, U32, U32, U64, U64, U64, U64, U32, U32, U64, U64, U64),
                    "history_observe", List.of(U64, U64, U32, U64, U32, U32, U32),
                    "philox_blocks", List.of(U64, U64, U64, U32),
                    "sample_rows", List.of(U64, U32, U32, U64, U64, U64, U64, U64, U32, U32, U64),
                    "mask_logits", List.of(U64, U32, U32, U64, U32, U64))),
            Map.entry("gated_delta_rule_chunked", Map.of(
                    "gdr_chunk_prep_d128", List.of(U64, U32, U64, U64, U64, U64, U32, U32, U32, U32, F32, U64),
                    "gdr_chunk_state_d128", List.of(U64, U32, U64, U64, U32, U32, U32, U32, U32, U64, U64, U64),
                    "gdr_recurrent", List.of(U64, U32, U64, U64, U64, U64, U32, U32, U32, U32, U32, U32, F32, U64, U64))),
            Map.entry("gdn_recurrent", gdnRecurrent()),
            Map.entry("causal_conv1d", causalConv1d()),
            Map.entry("gdn_gating", Map.of("gdn_split_gating", List.of(U64, U64, U64, U64, U64, U64, U64, U64, U32, U32, U32, U32, U32))),
            Map.entry("attention_prep", Map.of("attention_prep_bf16", List.of(U64, U32, U64, U64, U32, U64, U64, U64, U32,
                    U64, U64, U64, U32, U32, U32, U32, U32, U32, F32, U64, U64, U64))),
            Map.entry("attention_prefill", Map.of(
                    "attention_prefill_hd256", PREFILL, "attention_prefill_hd128", PREFILL,
                    "attention_prefill_hd64", PREFILL, "attention_prefill_hd32", PREFILL, "attention_prefill_hd256_w4", PREFILL)),
            Map.entry("attention_decode", Map.of(
                    "attention_decode_hd256_g1", DECODE, "attention_decode_hd256_g2", DECODE,
                    "attention_decode_hd128_g1", DECODE, "attention_decode_hd128_g2", DECODE,
                    "attention_decode_hd64_g1", DECODE, "attention_decode_hd64_g2", DECODE,
                    "attention_decode_hd32_g1", DECODE, "attention_decode_hd32_g2", DECODE,
                    "attention_decode_combine", List.of(U64, U64, U64, U32, U32, U32, U32, U64, U64, U32, U32))));

    /** qkv, beta|ba, g, A_log, dt_bias, state, slots, out; batch, Hk, Hv, dk, dv: for both paths and the three gate modes. */
    private static Map<String, List<ParamType>> gdnRecurrent() {
        List<ParamType> sig = List.of(U64, U64, U64, U64, U64, U64, U64, U64, U32, U32, U32, U32, U32);
        Map<String, List<ParamType>> m = new java.util.HashMap<>();
        for (String path : List.of("k128", "any")) for (String mode : List.of("f32", "bf16", "fused")) m.put("gdn_recurrent_" + path + "_" + mode, sig);
        return m;
    }

    /** prefill: x, w, state, cu_seqlens, slots, out, batch, tokens, channels, chunk; update: x, w, state, slots, out, channels; K = 2, 3, 4. */
    private static Map<String, List<ParamType>> causalConv1d() {
        Map<String, List<ParamType>> m = new java.util.HashMap<>();
        for (int k = 2; k <= 4; k++) {
            m.put("causal_conv1d_prefill_k" + k, List.of(U64, U64, U64, U64, U64, U64, U32, U32, U32, U32));
            m.put("causal_conv1d_update_k" + k, List.of(U64, U64, U64, U64, U64, U32));
        }
        return m;
    }

    @Test
    @Tag("ptx") // needs the kernels nvcc compiled; mvn -Pcpu-only leaves them out
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
        JnextException e = assertThrows(JnextException.class, () -> PtxModule.readPtx("no_such_kernel"));
        assertTrue(e.getMessage().contains("dev/jnext/kernels/ptx/no_such_kernel.ptx"), e.getMessage());
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
