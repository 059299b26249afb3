package org.vdiskload.text;

/**
 * Text taken from an image (a file name, a descriptor line, a snapshot or partition name) made safe to show:
 * every character a terminal or a log would act on instead of print — C0 and C1 controls (ESC, CR, LF, BEL,
 * CSI...), DEL, Unicode format characters (bidirectional overrides, zero-width joiners), line and paragraph
 * separators, unpaired surrogates — becomes a C-style escape ({@code \x1b}, {@code \u202e}), as {@code ls -b}
 * and Python's {@code ascii()} show them. Everything else, backslashes included, stays as it is, so
 * escaping twice changes nothing and Windows paths stay readable.
 */
public final class Printable {
    private Printable() {}

    /** {@code s} with every unsafe character escaped; null stays null. */
    public static String of(String s) {
        if (s == null) return null;
        int i = 0;
        while (i < s.length() && safe(s, i)) i++;
        if (i == s.length()) return s;
        StringBuilder b = new StringBuilder(s.length() + 16).append(s, 0, i);
        for (; i < s.length(); i++) {
            char c = s.charAt(i);
            if (safe(s, i)) b.append(c);
            else if (c <= 0xff) b.append(String.format("\\x%02x", (int) c));
            else b.append(String.format("\\u%04x", (int) c));
        }
        return b.toString();
    }

    /** Whether the character at {@code i} may be shown as it is (a surrogate only as half of a pair). */
    public static boolean safe(String s, int i) {
        char c = s.charAt(i);
        if (Character.isHighSurrogate(c)) return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        if (Character.isLowSurrogate(c)) return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
        if (Character.isISOControl(c)) return false;
        return switch (Character.getType(c)) {
            case Character.FORMAT, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> false;
            default -> true;
        };
    }
}
