package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * qemu-img's {@code -o key=value,...} options for creating an image, plus the backing file. A creator
 * takes the keys it knows ({@link #take}, {@link #takeSize}, {@link #takeBoolean}) and then calls
 * {@link #requireAllTaken}, so a misspelt option is refused before any file is written.
 *
 * @param backingFile   the backing file name to record, or null
 * @param backingFormat its format, or null
 */
public final class CreateOptions {
    private final Map<String, String> options;
    private final Set<String> taken = new HashSet<>();
    private final String backingFile;
    private final String backingFormat;
    private final Path target;

    public CreateOptions(Path target, Map<String, String> options, String backingFile, String backingFormat) {
        this.target = target;
        this.options = new LinkedHashMap<>(options);
        this.backingFile = backingFile;
        this.backingFormat = backingFormat;
    }

    /** Parses {@code key=value,key=value} (qemu's -o syntax; ",," escapes a comma). */
    public static Map<String, String> parse(String spec, Path target) throws ImageException {
        Map<String, String> out = new LinkedHashMap<>();
        if (spec == null || spec.isEmpty()) return out;
        for (String part : spec.replace(",,", "\0").split(",")) {
            String p = part.replace('\0', ',');
            int eq = p.indexOf('=');
            if (eq <= 0) throw ImageException.invalid(target, "invalid option '" + p + "' (expected key=value)");
            out.put(p.substring(0, eq).trim(), p.substring(eq + 1).trim());
        }
        return out;
    }

    public Path target() { return target; }
    public String backingFile() { return backingFile; }
    public String backingFormat() { return backingFormat; }

    /** The value of {@code key}, or {@code dflt}; marks it understood. */
    public String take(String key, String dflt) {
        taken.add(key);
        return options.getOrDefault(key, dflt);
    }

    /** One of {@code allowed} (case-insensitive), or a clear refusal naming them. */
    public String takeChoice(String key, String dflt, String... allowed) throws ImageException {
        String v = take(key, dflt);
        if (v == null) return null;
        for (String a : allowed) if (a.equalsIgnoreCase(v)) return a;
        throw ImageException.invalid(target, "invalid value '" + v + "' for option " + key + " (one of: " + String.join(", ", allowed) + ")");
    }

    public boolean takeBoolean(String key, boolean dflt) throws ImageException {
        String v = take(key, null);
        if (v == null) return dflt;
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "true", "yes" -> true;
            case "off", "false", "no" -> false;
            default -> throw ImageException.invalid(target, "invalid value '" + v + "' for option " + key + " (on or off)");
        };
    }

    /** A size such as {@code 65536}, {@code 64k}, {@code 2M}; -1 if absent. */
    public long takeSize(String key) throws ImageException {
        String v = take(key, null);
        if (v == null) return -1;
        try {
            return Sizes.parse(v);
        } catch (IllegalArgumentException e) {
            throw ImageException.invalid(target, "invalid size '" + v + "' for option " + key);
        }
    }

    /** Refuses any option no one took: a typo must not be ignored. */
    public void requireAllTaken(String format) throws ImageException {
        for (String k : options.keySet()) {
            if (!taken.contains(k)) throw ImageException.invalid(target, "unknown option '" + k + "' for format " + format);
        }
    }
}
