package dev.jnext.gpu;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KernelArgsTest {
    private final KernelArgs args = new KernelArgs("k", List.of(ParamType.U64, ParamType.U32, ParamType.F32, ParamType.U64));

    @Test
    void packsEachValueIntoItsSlotAndPointsTheArrayAtTheSlots() {
        args.reset().ptr(0x7f00_1234_5678L).i32(-17).f32(1.5e-6f).i64(42L);
        MemorySegment pointers = args.packed();
        for (int i = 0; i < 4; i++) {
            assertEquals(args.slot(i).address(), pointers.getAtIndex(ValueLayout.ADDRESS, i).address(), "pointer " + i);
        }
        assertEquals(0x7f00_1234_5678L, args.slot(0).get(ValueLayout.JAVA_LONG, 0));
        assertEquals(-17, args.slot(1).get(ValueLayout.JAVA_INT, 0));
        assertEquals(1.5e-6f, args.slot(2).get(ValueLayout.JAVA_FLOAT, 0));
        assertEquals(42L, args.slot(3).get(ValueLayout.JAVA_LONG, 0));
        assertTrue(args.slot(1).address() - args.slot(0).address() >= 8, "slots do not overlap");
    }

    @Test
    void reuseOverwritesValuesInPlace() {
        args.reset().ptr(1).i32(2).f32(3f).ptr(4);
        long slot0 = args.slot(0).address();
        args.reset().ptr(10).i32(20).f32(30f).ptr(40);
        assertEquals(slot0, args.packed().getAtIndex(ValueLayout.ADDRESS, 0).address());
        assertEquals(20, args.slot(1).get(ValueLayout.JAVA_INT, 0));
        assertEquals(40L, args.slot(3).get(ValueLayout.JAVA_LONG, 0));
    }

    @Test
    void rejectsWrongTypeMissingAndExtraArguments() {
        IllegalArgumentException wrong = assertThrows(IllegalArgumentException.class, () -> args.reset().i32(1));
        assertTrue(wrong.getMessage().contains("parameter 0 is U64, got U32"), wrong.getMessage());
        args.reset().ptr(1).i32(2);
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, args::packed);
        assertTrue(missing.getMessage().contains("takes 4 parameters; got 2"), missing.getMessage());
        args.reset().ptr(1).i32(2).f32(3).ptr(4);
        assertThrows(IllegalArgumentException.class, () -> args.ptr(5));
    }

    @Test
    void dim3RejectsEmptyLaunches() {
        assertThrows(IllegalArgumentException.class, () -> Dim3.of(0));
        assertEquals(new Dim3(3, 2, 1), Dim3.of(3, 2));
    }
}
