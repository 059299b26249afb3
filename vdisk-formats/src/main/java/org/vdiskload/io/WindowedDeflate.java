package org.vdiskload.io;

import java.util.Arrays;
import java.util.zip.Deflater;

/**
 * Raw deflate that qemu can inflate with its 4 KiB window (zlib window bits -12), as qcow and qcow2
 * compressed clusters need: java.util.zip cannot set the window size, so the dictionary is reset (a
 * full flush) every 4 KiB of input instead, and no back-reference reaches further.
 */
public final class WindowedDeflate {
    private static final int WINDOW = 4096;

    private WindowedDeflate() {}

    /** {@code in} compressed, or null if that takes more than {@code limit} bytes. */
    public static byte[] compress(byte[] in, int limit) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        try {
            byte[] out = new byte[limit + 64];
            int n = 0;
            for (int p = 0; p < in.length; p += WINDOW) {
                boolean last = p + WINDOW >= in.length;
                d.setInput(in, p, Math.min(WINDOW, in.length - p));
                if (last) d.finish();
                while (true) {
                    if (n >= out.length) return null;
                    n += d.deflate(out, n, out.length - n, last ? Deflater.NO_FLUSH : Deflater.FULL_FLUSH);
                    if (last ? d.finished() : n < out.length) break; // a flush is done when output space is left over
                }
            }
            return n > limit ? null : Arrays.copyOf(out, n);
        } finally {
            d.end();
        }
    }
}
