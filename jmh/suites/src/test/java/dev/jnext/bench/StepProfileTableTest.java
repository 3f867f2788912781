package dev.jnext.bench;

import dev.jnext.cuda.StepProfile.OpTime;
import dev.jnext.model.DType;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StepProfileTableTest {

    @Test
    void kindsDropTheLayerAndTheNextLayersNumber() {
        assertEquals("gdn core", StepProfileTable.kind("layer 12 gdn core"));
        assertEquals("residual + input norm", StepProfileTable.kind("layer 7 residual + input norm 8"));
        assertEquals("residual + final norm", StepProfileTable.kind("layer 47 residual + final norm"));
        assertEquals("embedding + input norm", StepProfileTable.kind("embedding + input norm 0"));
        assertEquals("lm_head", StepProfileTable.kind("lm_head"));
    }

    /** The op names the plan of an 8-layer Qwen3-Next has, in its order (CudaModel's plan builder). */
    private static List<OpTime> plan(ModelConfig c) {
        List<OpTime> ops = new ArrayList<>();
        ops.add(new OpTime("embedding + input norm 0", -1, 0.01));
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            if (c.layerType(l) == LayerType.LINEAR_ATTENTION) {
                ops.add(new OpTime("layer " + l + " gdn projections + split", l, 0.01));
                ops.add(new OpTime("layer " + l + " gdn core", l, 0.01));
                ops.add(new OpTime("layer " + l + " gdn gated norm + out_proj", l, 0.01));
            } else {
                ops.add(new OpTime("layer " + l + " q/k/v projections", l, 0.01));
                ops.add(new OpTime("layer " + l + " attention core", l, 0.01));
                ops.add(new OpTime("layer " + l + " o_proj", l, 0.01));
            }
            ops.add(new OpTime("layer " + l + " post-attention norm", l, 0.01));
            ops.add(new OpTime("layer " + l + " moe", l, 0.01));
            ops.add(new OpTime("layer " + l + " residual + " + (l + 1 < c.numHiddenLayers() ? "input norm " + (l + 1) : "final norm"), l, 0.01));
        }
        ops.add(new OpTime("lm_head", -1, 0.01));
        ops.add(new OpTime("sampling", -1, 0.01));
        return ops;
    }

    @Test
    void aDecodeStepsBytesAgreeWithTheRooflineOfBenchModel() {
        ModelConfig c = SyntheticCheckpoint.preset("next-80b-a3b", 8, 64, DType.BF16);
        int b = 1, touched = c.numExpertsPerTok();
        List<StepProfileTable.KindRow> kinds = StepProfileTable.rows(plan(c), c, b, b, 168, b, touched);
        assertEquals(List.of("embedding + input norm", "gdn projections + split", "gdn core", "gdn gated norm + out_proj",
                "post-attention norm", "moe", "residual + input norm", "q/k/v projections", "attention core", "o_proj",
                "residual + final norm", "lm_head", "sampling"), kinds.stream().map(StepProfileTable.KindRow::kind).toList());
        assertEquals(6, kinds.get(1).count());
        double bytes = kinds.stream().mapToDouble(StepProfileTable.KindRow::bytes).sum();
        double roofline = ModelBench.decodeBytes(c, b, 168);
        // the same weights and state; the table also counts activations and the logits (a few MB)
        assertTrue(bytes >= roofline && bytes <= 1.05 * roofline, bytes + " vs " + roofline);
        Map<String, Double> numbers = new HashMap<>();
        List<BenchSuite.Row> rows = StepProfileTable.benchRows("profile decode b1", kinds, true, 3.0, 700, numbers, "profile_decode_b1");
        assertEquals(kinds.size() + 1, rows.size());
        assertEquals(0.01 * plan(c).size(), numbers.get("profile_decode_b1_total_ms"), 1e-9);
        assertEquals(0.01 * 6 / numbers.get("profile_decode_b1_total_ms"), numbers.get("profile_decode_b1_gdn_core_share"), 1e-9);
    }

    @Test
    void aPrefillStepsFlopsAgreeWithTheRooflineOfBenchModel() {
        ModelConfig c = SyntheticCheckpoint.preset("next-80b-a3b", 8, 64, DType.BF16);
        int t = 4096;
        List<StepProfileTable.KindRow> kinds = StepProfileTable.rows(plan(c), c, t, 1, t, 1, 64);
        double flops = kinds.stream().mapToDouble(StepProfileTable.KindRow::flops).sum();
        double roofline = ModelBench.prefillFlops(c, t);
        // the roofline runs the LM head over every token; a prefill step computes one logits row
        double lmAll = 2.0 * t * c.vocabSize() * c.hiddenSize(), lmOne = 2.0 * c.vocabSize() * c.hiddenSize();
        assertEquals(roofline - lmAll + lmOne, flops, 1e-6 * flops);
    }
}
