package dev.jnext.cuda;

import dev.jnext.model.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The geometry sweep's draws (CPU): inside the ranges issue 16 names, accepted by the kernels, bounded in size, varied. */
class GeometrySweepDrawTest {
    @Test
    void drawsAreAcceptedAndCoverTheRanges() {
        SplittableRandom seeds = new SplittableRandom(16);
        Set<Integer> headDims = new HashSet<>(), topKs = new HashSet<>();
        boolean dense = false, sparse = false, shortPrompt = false, longPrompt = false;
        for (int i = 0; i < 300; i++) {
            GeometrySweepGpuTest.Drawn d = GeometrySweepGpuTest.draw(new SplittableRandom(seeds.nextLong()));
            ModelConfig c = d.config();
            String where = d.describe();
            assertTrue(CudaGeometry.violations(c).isEmpty(), where + ": " + CudaGeometry.violations(c));
            assertTrue(c.hiddenSize() >= 256 && c.hiddenSize() <= 2048, where);
            assertTrue(c.numAttentionHeads() >= 2 && c.numAttentionHeads() <= 32 && c.numAttentionHeads() % c.numKeyValueHeads() == 0, where);
            assertTrue(c.headDim() >= 64 && c.headDim() <= 256, where);
            assertTrue(c.linearNumKeyHeads() >= 2 && c.linearNumKeyHeads() <= 16 && c.linearNumValueHeads() % c.linearNumKeyHeads() == 0, where);
            assertTrue(c.linearKeyHeadDim() == 128 && c.linearValueHeadDim() == 128, where);
            assertTrue(c.numExperts() >= 8 && c.numExperts() <= 512 && c.numExpertsPerTok() >= 1 && c.numExpertsPerTok() <= 10, where);
            assertTrue(c.vocabSize() >= 4096 && c.vocabSize() <= 152_000, where);
            assertTrue(d.p() >= 2 && d.p() <= 4096 && d.n() >= 1 && d.n() < d.p(), where);
            assertTrue((long) d.p() * c.vocabSize() <= GeometrySweepGpuTest.MAX_LOGITS, where);
            headDims.add(c.headDim());
            topKs.add(c.numExpertsPerTok());
            dense |= !c.mlpOnlyLayers().isEmpty();
            sparse |= c.mlpOnlyLayers().isEmpty();
            shortPrompt |= d.p() <= 64;
            longPrompt |= d.p() > 1024;
        }
        assertTrue(headDims.size() >= 2 && topKs.size() >= 5 && dense && sparse && shortPrompt && longPrompt,
                "the draws vary: head dims " + headDims + ", top-k " + topKs + ", dense layers " + dense + "/" + sparse + ", prompts short " + shortPrompt + " long " + longPrompt);
    }
}
