package dev.jnext.cuda;

import dev.jnext.model.DType;
import dev.jnext.model.Fp8Blocks;
import dev.jnext.model.Fp8Quantization;
import dev.jnext.numeric.Bf16;
import dev.jnext.model.weights.Matrix;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The device image of a model's weights as a list of regions at fixed byte offsets of one allocation, each region the
 * concatenation of pieces converted to the region's device dtype (bf16, or fp32 for the few fp32 parameters). Planning
 * it needs no GPU: {@link #bytes()} feeds the memory plan before anything is allocated, and {@link #write} produces any
 * byte range of the image on the host, which the uploader streams through pinned staging.
 *
 * <p>An FP8 checkpoint's weights are either kept in 8 bits ({@link Piece.Fp8Values} into an {@link Target#FP8} region, their
 * block scales as fp32 values beside them: the routed and shared experts, which the FP8 kernels read) or dequantized here,
 * on the host, while the image streams ({@link Piece.BlockFp8} into a bf16 region: each element its e4m3 value times its
 * block scale in fp32, rounded to bf16 — exactly what the same checkpoint dequantized to fp32 would give, and exactly what
 * the FP8 kernels compute on).
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

        /** An FP8 matrix's e4m3 codes as they are stored (into an {@link Target#FP8} region). */
        record Fp8Values(Matrix matrix) implements Piece {
            public Fp8Values {
                if (matrix.scales() == null) throw new IllegalArgumentException(matrix.name() + " is not FP8");
            }

            public long elements() {
                return (long) matrix.rows() * matrix.cols();
            }
        }

        /**
         * An unquantized matrix block-quantized to FP8 while it streams ({@link Fp8Blocks}): its e4m3 codes, row-major
         * (into an {@link Target#FP8} region), or with {@code scales} its {@code [⌈R/128⌉, ⌈C/128⌉]} block scales (into an
         * {@link Target#F32} region). Each 128-row band is quantized as a whole whatever range a write asks for.
         */
        record Quantized(Matrix matrix, boolean scales) implements Piece {
            public Quantized {
                if (matrix.scales() != null) throw new IllegalArgumentException(matrix.name() + " is FP8 already");
            }

            public long elements() {
                return scales ? (long) Fp8Blocks.blocks(matrix.rows()) * Fp8Blocks.blocks(matrix.cols())
                        : (long) matrix.rows() * matrix.cols();
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

        /** Elements {@code [first, first + elements)} of another piece (rows of a matrix: a re-laid-out projection). */
        record Range(Piece of, long first, long elements) implements Piece {
            public Range {
                if (of instanceof Range) throw new IllegalArgumentException("a range of a range");
                if (first < 0 || elements < 0 || first + elements > of.elements()) {
                    throw new IllegalArgumentException("range [" + first + ", " + (first + elements) + ") of a piece of "
                            + of.elements() + " elements");
                }
            }
        }

        static Piece of(Matrix m) {
            return m.scales() != null ? new BlockFp8(m) : new Stored(m.data(), m.dtype());
        }

        /** Rows {@code [from, from + count)} of {@code m}. */
        static Piece rows(Matrix m, int from, int count) {
            return new Range(of(m), (long) from * m.cols(), (long) count * m.cols());
        }
    }

    /** Device element type of a region. */
    public enum Target {
        BF16(2), F32(4), /** e4m3 codes, copied as stored. */ FP8(1);

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
            case Piece.Fp8Values v -> {
                if (target != Target.FP8) throw new IllegalStateException("weight image: FP8 codes into a " + target + " region");
                MemorySegment.copy(v.matrix().data(), first, dst, out, count);
            }
            case Piece.Quantized q -> quantized(q, first, count, target, dst, out);
            case Piece.Range r -> convert(r.of(), r.first() + first, count, target, dst, out);
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

    /** Elements {@code [first, first + count)} of a quantized piece: the bands they touch quantized in parallel. */
    private static void quantized(Piece.Quantized p, long first, long count, Target target, MemorySegment dst, long out) {
        if (target != (p.scales() ? Target.F32 : Target.FP8)) {
            throw new IllegalStateException("weight image: quantized " + (p.scales() ? "scales" : "codes") + " into a " + target + " region");
        }
        Matrix m = p.matrix();
        int cols = m.cols(), gc = Fp8Blocks.blocks(cols), block = Fp8Quantization.BLOCK;
        long perBand = p.scales() ? gc : (long) block * cols;   // elements of one band in the piece
        int b0 = (int) (first / perBand), b1 = (int) ((first + count - 1) / perBand);
        IntStream.rangeClosed(b0, b1).parallel().forEach(band -> {
            int r0 = band * block, rows = Math.min(m.rows(), r0 + block) - r0;
            float[] v = new float[rows * cols];
            float[] row = new float[cols];
            short[] scratch = new short[cols];
            for (int r = 0; r < rows; r++) {
                m.loadRow(r0 + r, row, scratch);
                System.arraycopy(row, 0, v, r * cols, cols);
            }
            byte[] q = new byte[rows * cols];
            float[] scales = new float[gc];
            Fp8Blocks.quantizeBand(v, 0, rows, cols, q, 0, scales, 0);
            long bandFirst = band * perBand, bandEnd = bandFirst + (p.scales() ? gc : (long) rows * cols);
            long from = Math.max(first, bandFirst), to = Math.min(first + count, bandEnd);
            long at = out + (from - first) * target.bytes;
            if (p.scales()) {
                for (long e = from; e < to; e++) dst.set(F32_LE, at + 4 * (e - from), scales[(int) (e - bandFirst)]);
            } else {
                MemorySegment.copy(MemorySegment.ofArray(q), from - bandFirst, dst, at, to - from);
            }
        });
    }

    private static void put(MemorySegment dst, long base, long i, float v, Target target) {
        if (target == Target.FP8) throw new IllegalStateException("weight image: only FP8 codes go into an FP8 region");
        if (target == Target.BF16) dst.set(I16_LE, base + 2 * i, Bf16.fromFloat(v));
        else dst.set(F32_LE, base + 4 * i, v);
    }
}
