package dev.jnext.cuda.kernels;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** sglang's gated-RMSNorm rows-per-block rule, and the capture constant (PIECEWISE_GRAPHS.md). */
class RowsPerBlockTest {
    @ParameterizedTest(name = "M={0} SMs={1} capturing={2} -> {3}")
    @CsvSource({
            // H100/H200: 132 SMs -> M <= 264: 1, <= 528: 2, else 4
            "1, 132, false, 1", "32, 132, false, 1", "264, 132, false, 1", "265, 132, false, 2",
            "528, 132, false, 2", "529, 132, false, 4", "1056, 132, false, 4", "1057, 132, false, 4",
            "131072, 132, false, 4", "4194304, 132, false, 4",
            // another SM count
            "100, 50, false, 1", "101, 50, false, 2", "201, 50, false, 4",
            // inside a capture: always the cap
            "1, 132, true, 4", "32, 132, true, 4", "300, 132, true, 4", "131072, 132, true, 4"})
    void rule(long m, int sms, boolean capturing, int expected) {
        assertEquals(expected, GatedRmsNormKernel.rowsPerBlock(m, sms, capturing));
    }
}
