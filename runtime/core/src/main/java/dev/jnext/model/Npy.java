package dev.jnext.model;

import dev.jnext.JnextException;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} (format 1.0) for little-endian float32 and int32 arrays in C order: reading whole arrays
 * (test goldens) and writing a float32 array row by row ({@code score --logits-out}).
 */
public final class Npy {

    /**
     * A read array: its shape and values (int32 arrays are widened into {@code ints}).
     *
     * @param shape  dimensions, C order
     * @param floats the values of a float32 array (null for int32)
     * @param ints   the values of an int32 array (null for float32)
     */
    public record Array(int[] shape, float[] floats, int[] ints) {
        /** Dimension {@code i}. */
        public int dim(int i) {
            return shape[i];
        }
    }

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']*)'");
    private static final Pattern ORDER = Pattern.compile("'fortran_order':\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

    private Npy() {}

    /** Reads a whole float32 or int32 {@code .npy}; any other dtype or layout is a {@link JnextException}. */
    public static Array read(Path file) {
        byte[] all;
        try {
            all = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new JnextException(file + ": cannot read: " + e.getMessage(), e);
        }
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (all.length < 10 || !Arrays.equals(Arrays.copyOf(all, 6), MAGIC)) {
            throw new JnextException(file + ": not a .npy file");
        }
        int major = all[6];
        int headerLen = major == 1 ? Short.toUnsignedInt(b.getShort(8)) : b.getInt(8);
        int dataStart = (major == 1 ? 10 : 12) + headerLen;
        String header = new String(all, major == 1 ? 10 : 12, headerLen, StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(header);
        Matcher o = ORDER.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !o.find() || !s.find()) throw new JnextException(file + ": unreadable .npy header " + header);
        if (o.group(1).equals("True")) throw new JnextException(file + ": Fortran-order arrays are not supported");
        int[] shape = Arrays.stream(s.group(1).split(",")).map(String::trim).filter(x -> !x.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
        long n = 1;
        for (int x : shape) n *= x;
        b.position(dataStart);
        switch (d.group(1)) {
            case "<f4" -> {
                float[] f = new float[(int) n];
                b.asFloatBuffer().get(f);
                return new Array(shape, f, null);
            }
            case "<i4" -> {
                int[] v = new int[(int) n];
                b.asIntBuffer().get(v);
                return new Array(shape, null, v);
            }
            default -> throw new JnextException(file + ": dtype " + d.group(1) + " is not supported (float32 or int32)");
        }
    }

    /** Streams a float32 array of a known shape to disk, one row at a time. */
    public static final class FloatWriter implements Closeable {
        private final Path file;
        private final FileChannel ch;
        private final long expected;
        private long written;

        /** Creates (or truncates) {@code file} and writes the header for {@code shape}. */
        public FloatWriter(Path file, int... shape) {
            this.file = file;
            long n = 1;
            for (int x : shape) n *= x;
            this.expected = n;
            StringBuilder dims = new StringBuilder();
            for (int x : shape) dims.append(x).append(", ");
            String dimsText = shape.length == 1 ? shape[0] + "," : dims.substring(0, dims.length() - 2);
            String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dimsText + "), }";
            int total = 10 + dict.length() + 1;
            int pad = (64 - total % 64) % 64;
            String header = dict + " ".repeat(pad) + "\n";
            ByteBuffer head = ByteBuffer.allocate(10 + header.length()).order(ByteOrder.LITTLE_ENDIAN);
            head.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length())
                    .put(header.getBytes(StandardCharsets.ISO_8859_1)).flip();
            try {
                ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.TRUNCATE_EXISTING);
                while (head.hasRemaining()) ch.write(head);
            } catch (IOException e) {
                throw new JnextException(file + ": cannot write: " + e.getMessage(), e);
            }
        }

        /** Appends {@code count} values of {@code values} from {@code offset}. */
        public void write(float[] values, int offset, int count) {
            ByteBuffer b = ByteBuffer.allocate(count * 4).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(values, offset, count);
            try {
                while (b.hasRemaining()) ch.write(b);
            } catch (IOException e) {
                throw new JnextException(file + ": cannot write: " + e.getMessage(), e);
            }
            written += count;
        }

        @Override
        public void close() {
            try {
                ch.close();
            } catch (IOException e) {
                throw new JnextException(file + ": cannot close: " + e.getMessage(), e);
            }
            if (written != expected) {
                throw new IllegalStateException(file + ": wrote " + written + " of " + expected + " values");
            }
        }
    }
}
