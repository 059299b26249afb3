package org.vdiskload.image;

import java.util.Locale;

/** Sizes as qemu-img takes them: a number of bytes with an optional k, M, G, T, P, E suffix (powers of 1024). */
public final class Sizes {
    private Sizes() {}

    /** Parses {@code 512}, {@code 64k}, {@code 1.5G}; throws IllegalArgumentException on anything else. */
    public static long parse(String s) {
        String t = s.trim();
        if (t.isEmpty()) throw new IllegalArgumentException("empty size");
        char last = Character.toLowerCase(t.charAt(t.length() - 1));
        int shift = switch (last) {
            case 'b' -> 0;
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            case 'p' -> 50;
            case 'e' -> 60;
            default -> -1;
        };
        String num = shift >= 0 ? t.substring(0, t.length() - 1) : t;
        if (shift < 0) shift = 0;
        if (!num.matches("[0-9]+(\\.[0-9]+)?")) throw new IllegalArgumentException("not a size: " + s);
        java.math.BigDecimal v = new java.math.BigDecimal(num).multiply(java.math.BigDecimal.valueOf(2).pow(shift));
        if (v.signum() < 0 || v.compareTo(java.math.BigDecimal.valueOf(Long.MAX_VALUE)) > 0 || v.stripTrailingZeros().scale() > 0) {
            throw new IllegalArgumentException("size out of range: " + s);
        }
        return v.longValueExact();
    }

    static String lower(String s) {
        return s.toLowerCase(Locale.ROOT);
    }
}
