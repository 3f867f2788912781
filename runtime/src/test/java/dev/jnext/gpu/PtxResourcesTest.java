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
    private static final List<ParamType> PREFILL = List.of(U64, U64, U64, U64, U32, U64, U64, U32, U64, U64, U32, U32, U32, U32, F32);
    private static final List<ParamType> DECODE = List.of(U64, U64, U64, U64, U32, U64, U32, U32, U32, U32, F32, U64, U64);
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
            "attention_prep", Map.of("attention_prep_bf16", List.of(U64, U32, U64, U64, U32, U64, U64, U64, U32,
                    U64, U64, U64, U32, U32, U32, U32, U32, F32, U64, U64, U64)),
            "attention_prefill", Map.of(
                    "attention_prefill_hd256", PREFILL, "attention_prefill_hd128", PREFILL,
                    "attention_prefill_hd64", PREFILL, "attention_prefill_hd32", PREFILL),
            "attention_decode", Map.of(
                    "attention_decode_hd256_g1", DECODE, "attention_decode_hd256_g2", DECODE,
                    "attention_decode_hd128_g1", DECODE, "attention_decode_hd128_g2", DECODE,
                    "attention_decode_hd64_g1", DECODE, "attention_decode_hd64_g2", DECODE,
                    "attention_decode_hd32_g1", DECODE, "attention_decode_hd32_g2", DECODE,
                    "attention_decode_combine", List.of(U64, U64, U64, U32, U32, U32, U32, U64, U64, U32, U32)));

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
