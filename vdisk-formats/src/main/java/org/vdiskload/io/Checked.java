package org.vdiskload.io;

import org.vdiskload.image.error.ImageException;

import java.io.IOException;

/**
 * Arithmetic and bounds checks for values read from disk. Every offset and size an image
 * supplies goes through here (or an equivalent check) before it is used.
 */
public final class Checked {
    private Checked() {}

    /** {@code a + b}, or a corrupt-image error naming the field if it overflows. */
    public static long add(ImageFile f, long at, String field, long a, long b) throws ImageException {
        try {
            return Math.addExact(a, b);
        } catch (ArithmeticException e) {
            throw ImageException.corrupt(f.path(), at, field, "value overflows: " + a + " + " + b);
        }
    }

    /** {@code a * b}, or a corrupt-image error naming the field if it overflows. */
    public static long mul(ImageFile f, long at, String field, long a, long b) throws ImageException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw ImageException.corrupt(f.path(), at, field, "value overflows: " + a + " * " + b);
        }
    }

    /** Requires {@code [pos, pos+len)} to lie inside the file. */
    public static void requireInFile(ImageFile f, long pos, long len, String field) throws IOException {
        if (pos < 0 || len < 0) {
            throw ImageException.corrupt(f.path(), pos, field, "negative offset or length (" + pos + ", " + len + ")");
        }
        long end = add(f, pos, field, pos, len);
        if (!f.reaches(end)) {
            throw ImageException.corrupt(f.path(), pos, field,
                    "extends to " + end + ", past the end of the file (" + f.size() + " bytes)");
        }
    }

    /** Requires {@code value} to be a multiple of {@code alignment} (a power of two). */
    public static void requireAligned(ImageFile f, long at, String field, long value, long alignment) throws ImageException {
        if ((value & (alignment - 1)) != 0) {
            throw ImageException.corrupt(f.path(), at, field, "value " + value + " is not aligned to " + alignment);
        }
    }

    /** Requires {@code cond}; otherwise a corrupt-image error with {@code problem}. */
    public static void require(boolean cond, ImageFile f, long at, String field, String problem) throws ImageException {
        if (!cond) throw ImageException.corrupt(f.path(), at, field, problem);
    }

    /** Converts to int for array sizes, or fails naming the field. */
    public static int toInt(ImageFile f, long at, String field, long v) throws ImageException {
        if (v < 0 || v > Integer.MAX_VALUE - 16) {
            throw ImageException.corrupt(f.path(), at, field, "value " + v + " is out of range");
        }
        return (int) v;
    }
}
