package dev.jnext.gpu;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads the {@code .entry} points of a PTX module and their parameter types (no GPU needed). */
public final class PtxEntries {
    private PtxEntries() {}

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][\\w$]*)\\s*\\(([^)]*)\\)", Pattern.DOTALL);
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+(?:\\.align\\s+\\d+\\s+)?\\.(\\w+)\\s+[\\w$]+(\\[\\d+\\])?");

    /** Entry name → parameter types, in file order. */
    public static Map<String, List<ParamType>> parse(String ptx) {
        Map<String, List<ParamType>> entries = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            List<ParamType> params = new ArrayList<>();
            Matcher p = PARAM.matcher(m.group(2));
            while (p.find()) {
                if (p.group(2) != null) {
                    throw new IllegalArgumentException("kernel " + m.group(1) + " takes a by-value aggregate parameter ("
                            + p.group(0) + "); jnext kernels take only scalars and pointers");
                }
                params.add(ParamType.fromPtx(p.group(1), m.group(1)));
            }
            entries.put(m.group(1), Collections.unmodifiableList(params));
        }
        return Collections.unmodifiableMap(entries);
    }
}
