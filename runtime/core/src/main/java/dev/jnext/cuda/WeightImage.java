package dev.jnext.cuda;

import dev.jnext.model.DType;
import dev.jnext.numeric.Bf16;
import dev.jnext.model.weights.Matrix;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The device image of a model's weights as a list of regions at fixed byte offsets of one allocation, each region the
 * concatenation of pieces converted to the region's device dtype (bf16, or fp32 for the few fp32 parameters). Planning
 * it needs no GPU: {@link #bytes()} feeds the memory plan before anything is allocated, and {@link #write} produces any
 * byte range of the image on the host, which the uploader streams through pinned staging.
 *
 * <p>An FP8 checkpoint's weights ({@link Piece.BlockFp8}) are dequantized here, on the host, while the image streams:
 * each element is its e4m3 value times its block scale in fp32, rounded to bf16 — exactly what the same checkpoint
 * dequantized to fp32 would give — so the image, and the memory plan that counts it, are bf16 (the FP8 kernels that
 * would keep the weights in 8 bits are not built yet).
 */
final class WeightImage {
    /** Regions start on 256-byte boundaries (cuBLASLt and the 16-byte vector loads are then always aligned). */
    static final long ALIGN = 256;

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One run of source elements. */
    public sealed interface Piece {
        long elements();

        /** Elements of a checkpoint tensor (a mapped segment in its stored dtype). */
        record Stored(MemorySegment data, DType dtype) implements Piece {
            public long elements() {
                return data.byteSize() / dtype.bytes();
            }
        }

        /** Values already on the heap (norm weights, A_log, ...). */
        record Floats(float[] values) implements Piece {
            public long elements() {
                return values.length;
            }
        }

        /** Zero padding (router padding rows, lm_head rows up to a multiple of 8). */
        record Zeros(long elements) implements Piece {}

        /** An FP8 matrix with its block scales, dequantized row by row ({@link Matrix#loadRow}). */
        record BlockFp8(Matrix matrix) implements Piece {
            public BlockFp8 {
                if (matrix.scales() == null) throw new IllegalArgumentException(matrix.name() + " is not FP8");
            }

            public long elements() {
                return (long) matrix.rows() * matrix.cols();
            }
        }

        static Piece of(Matrix m) {
            return m.scales() != null ? new BlockFp8(m) : new Stored(m.data(), m.dtype());
        }
    }

    /** Device element type of a region. */
    public enum Target {
        BF16(2), F32(4);

        final int bytes;

        Target(int bytes) {
            this.bytes = bytes;
        }
    }

    /** A region: {@code name} for messages, its pieces, where it starts and how many bytes it has. */
    public record Region(String name, Target target, List<Piece> pieces, long offset, long bytes) {}

    private final List<Region> regions = new ArrayList<>();
    private long size;

    /** Appends a region; returns its byte offset in the image. */
    public long add(String name, Target target, List<Piece> pieces) {
        long elements = 0;
        for (Piece p : pieces) elements = Math.addExact(elements, p.elements());
        long offset = (size + ALIGN - 1) / ALIGN * ALIGN;
        long bytes = Math.multiplyExact(elements, target.bytes);
        regions.add(new Region(name, target, List.copyOf(pieces), offset, bytes));
        size = offset + bytes;
        return offset;
    }

    public long add(String name, Target target, Piece... pieces) {
        return add(name, target, List.of(pieces));
    }

    /** Bytes of the whole image. */
    public long bytes() {
        return (size + ALIGN - 1) / ALIGN * ALIGN;
    }

    public List<Region> regions() {
        return Collections.unmodifiableList(regions);
    }

    /**
     * Writes bytes {@code [from, from + len)} of {@code region} (converted) into {@code dst} at {@code dstOffset}.
     * {@code from} and {@code len} must be multiples of the region's element size.
     */
    public static void write(Region region, long from, long len, MemorySegment dst, long dstOffset) {
        int eb = region.target().bytes;
        if (from % eb != 0 || len % eb != 0 || from < 0 || from + len > region.bytes()) {
            throw new IllegalArgumentException("weight image: range [" + from + ", " + (from + len) + ") of " + region.name());
        }
        long element = from / eb;
        long remaining = len / eb;
        long out = dstOffset;
        long pieceStart = 0;
        for (Piece p : region.pieces()) {
            long n = p.elements();
            if (remaining == 0) break;
            if (element < pieceStart + n) {
                long first = element - pieceStart;
                long count = Math.min(n - first, remaining);
                convert(p, first, count, region.target(), dst, out);
                out += count * eb;
                element += count;
                remaining -= count;
            }
            pieceStart += n;
        }
    }

    private static void convert(Piece p, long first, long count, Target target, MemorySegment dst, long out) {
        switch (p) {
            case Piece.Zeros z -> dst.asSlice(out, count * target.bytes).fill((byte) 0);
            case Piece.Floats f -> {
                for (long i = 0; i < count; i++) put(dst, out, i, f.values()[(int) (first + i)], target);
            }
            case Piece.BlockFp8 q -> {
                Matrix m = q.matrix();
                int cols = m.cols();
                float[] row = new float[cols];
                long done = 0;
                while (done < count) {
                    long e = first + done;
                    int r = (int) (e / cols);
                    int c0 = (int) (e % cols);
                    int n = (int) Math.min(cols - c0, count - done);
                    m.loadRow(r, row, null);
                    for (int i = 0; i < n; i++) put(dst, out, done + i, row[c0 + i], target);
                    done += n;
                }
            }
            case Piece.Stored s -> {
                if (s.dtype() == DType.BF16 && target == Target.BF16) {
                    MemorySegment.copy(s.data(), first * 2, dst, out, count * 2);
                } else if (s.dtype() == DType.F32 && target == Target.F32) {
                    MemorySegment.copy(s.data(), first * 4, dst, out, count * 4);
                } else {
                    for (long i = 0; i < count; i++) {
                        long e = first + i;
                        float v = switch (s.dtype()) {
                            case F32 -> s.data().get(F32_LE, e * 4);
                            case BF16 -> Bf16.toFloat(s.data().get(I16_LE, e * 2));
                            case F16 -> Float.float16ToFloat(s.data().get(I16_LE, e * 2));
                            case F8_E4M3 -> throw new IllegalStateException("F8_E4M3 data without its block scales");
                        };
                        put(dst, out, i, v, target);
                    }
                }
            }
        }
    }

    private static void put(MemorySegment dst, long base, long i, float v, Target target) {
        if (target == Target.BF16) dst.set(I16_LE, base + 2 * i, Bf16.fromFloat(v));
        else dst.set(F32_LE, base + 4 * i, v);
    }
}
