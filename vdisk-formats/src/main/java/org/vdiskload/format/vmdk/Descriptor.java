package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parsed VMDK text descriptor: {@code key=value} entries (the header and the {@code ddb.*} disk
 * database) and the extent lines. Tolerates comments, blank lines, CRLF, spaces around '=' and quoted
 * or bare values; anything else is refused rather than skipped, so a file that only looks like a
 * descriptor does not open as a disk with missing extents.
 *
 * @param entries every key=value entry except ddb.*, first occurrence wins (as qemu's strstr lookup)
 * @param ddb     the ddb.* entries, keys without the "ddb." prefix
 * @param extents extent lines in order
 */
record Descriptor(Map<String, String> entries, Map<String, String> ddb, List<ExtentLine> extents) {

    /** qemu reads at most this much of a descriptor (1 MiB - 1); larger ones are refused here. */
    static final int MAX_BYTES = (1 << 20) - 1;

    private static final Pattern EXTENT = Pattern.compile(
            "(RW|RDONLY|NOACCESS)\\s+(\\d{1,19})\\s+([A-Za-z]+)(?:\\s+\"([^\"]*)\")?(?:\\s+(\\d{1,19}))?");
    private static final Pattern ACCESS_WORD = Pattern.compile("(RW|RDONLY|NOACCESS)(\\s.*)?");
    private static final Pattern KEY = Pattern.compile("[A-Za-z0-9_.\\-]+");
    // Blanks within a line only: \s would span line ends, and from every line's start the search would back
    // off across all the blank lines after it (quadratic: hours for a descriptor of 1 MiB of blank lines).
    private static final Pattern ENCODING = Pattern.compile("(?m)^[ \\t]*encoding[ \\t]*=[ \\t]*\"?([A-Za-z0-9_\\-]+)");

    /** Decodes descriptor bytes in the charset its {@code encoding} entry names (UTF-8 by default); stops at a NUL. */
    static String decode(byte[] bytes) {
        int len = 0;
        while (len < bytes.length && bytes[len] != 0) len++;
        Charset cs = StandardCharsets.UTF_8;
        Matcher m = ENCODING.matcher(new String(bytes, 0, len, StandardCharsets.ISO_8859_1));
        if (m.find()) {
            try {
                if (Charset.isSupported(m.group(1))) cs = Charset.forName(m.group(1));
            } catch (IllegalArgumentException e) {
                // an unknown charset name: keep UTF-8
            }
        }
        return new String(bytes, 0, len, cs);
    }

    /** Parses descriptor text read from {@code f} at {@code at}. */
    static Descriptor parse(String text, ImageFile f, long at) throws ImageException {
        Map<String, String> entries = new LinkedHashMap<>();
        Map<String, String> ddb = new LinkedHashMap<>();
        List<ExtentLine> extents = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            int lineNo = i + 1;
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            if (ACCESS_WORD.matcher(line).matches()) {
                extents.add(extentLine(line, lineNo, f, at));
                continue;
            }
            int eq = line.indexOf('=');
            String key = eq > 0 ? line.substring(0, eq).strip() : "";
            if (!KEY.matcher(key).matches()) {
                throw ImageException.corrupt(f.path(), at, "descriptor line " + lineNo,
                        "descriptor line " + lineNo + " is not a comment, key = value pair or extent: " + shorten(line));
            }
            String value = unquote(line.substring(eq + 1).strip());
            if (key.startsWith("ddb.")) ddb.putIfAbsent(key.substring(4), value);
            else entries.putIfAbsent(key, value);
        }
        return new Descriptor(Collections.unmodifiableMap(entries), Collections.unmodifiableMap(ddb), List.copyOf(extents));
    }

    private static ExtentLine extentLine(String line, int lineNo, ImageFile f, long at) throws ImageException {
        Matcher m = EXTENT.matcher(line);
        String field = "descriptor line " + lineNo;
        if (!m.matches()) throw ImageException.corrupt(f.path(), at, field, "invalid extent line: " + shorten(line));
        long sectors;
        long offset = -1;
        try {
            sectors = Long.parseLong(m.group(2));
            if (m.group(5) != null) offset = Long.parseLong(m.group(5));
        } catch (NumberFormatException e) {
            throw ImageException.corrupt(f.path(), at, field, "extent size or offset out of range: " + shorten(line));
        }
        if (sectors > Long.MAX_VALUE >> 9 || offset > Long.MAX_VALUE >> 9) {
            throw ImageException.corrupt(f.path(), at, field, "extent size or offset out of range: " + shorten(line));
        }
        String type = m.group(3);
        String name = m.group(4);
        boolean zero = type.equals("ZERO");
        if (zero != (name == null)) {
            throw ImageException.corrupt(f.path(), at, field, (zero ? "ZERO extents name no file: " : "extent names no file: ") + shorten(line));
        }
        // As qemu: FLAT needs a start offset; every other type must not have one.
        if (type.equals("FLAT") != (offset >= 0)) {
            throw ImageException.corrupt(f.path(), at, field, "invalid extent line (" + (offset >= 0 ? "unexpected" : "missing")
                    + " start offset): " + shorten(line));
        }
        return new ExtentLine(lineNo, m.group(1), sectors, type, name, Math.max(offset, 0));
    }

    private static String unquote(String v) {
        return v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"") ? v.substring(1, v.length() - 1) : v;
    }

    private static String shorten(String line) {
        return line.length() > 80 ? line.substring(0, 80) + "..." : line;
    }

    String createType() {
        return entries.get("createType");
    }

    /** The parent's file name, or null where the disk has no parent (absent or empty hint). */
    String parentFileNameHint() {
        String p = entries.get("parentFileNameHint");
        return p == null || p.isEmpty() ? null : p;
    }

    /** A content ID ("CID" or "parentCID"): 32-bit hex, required (qemu refuses to open without it). */
    long cid(String key, ImageFile f, long at) throws ImageException {
        String v = entries.get(key);
        if (v == null) throw ImageException.corrupt(f.path(), at, key, "descriptor has no " + key);
        String hex = v.startsWith("0x") || v.startsWith("0X") ? v.substring(2) : v;
        try {
            long cid = Long.parseUnsignedLong(hex, 16);
            if (cid > 0xffffffffL) throw new NumberFormatException();
            return cid;
        } catch (NumberFormatException e) {
            throw ImageException.corrupt(f.path(), at, key, key + " '" + shorten(v) + "' is not a 32-bit hexadecimal number");
        }
    }
}
