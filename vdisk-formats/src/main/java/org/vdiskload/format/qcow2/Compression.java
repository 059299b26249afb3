package org.vdiskload.format.qcow2;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * Decompresses one compressed cluster. The stored bytes are rounded up to whole sectors, so the
 * stream may be followed by garbage: like qemu, decompress until the cluster is full and require
 * exactly that.
 */
final class Compression {
    /** qemu inflates with a 4 KiB window (zlib window bits -12), so no match may reach further back. */
    private static final int ZLIB_WINDOW = 4096;
    /** zstd's default level, as qemu uses. */
    private static final int ZSTD_LEVEL = 3;

    private Compression() {}

    /** Compresses one cluster; null if the result would not fit in {@code limit} bytes (then qemu stores it plainly). */
    static byte[] compress(int type, byte[] in, int limit) {
        byte[] out = type == Qcow2Header.COMPRESSION_ZSTD ? Zstd.compress(in, ZSTD_LEVEL) : deflate(in, limit);
        return out == null || out.length > limit ? null : out;
    }

    /**
     * Raw deflate whose back-references stay inside qemu's 4 KiB window: java.util.zip cannot set the
     * window size, so the dictionary is reset (a full flush) every 4 KiB of input instead.
     */
    private static byte[] deflate(byte[] in, int limit) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        try {
            byte[] out = new byte[limit + 64];
            int n = 0;
            for (int p = 0; p < in.length; p += ZLIB_WINDOW) {
                boolean last = p + ZLIB_WINDOW >= in.length;
                d.setInput(in, p, Math.min(ZLIB_WINDOW, in.length - p));
                if (last) d.finish();
                while (true) {
                    if (n >= out.length) return null;
                    n += d.deflate(out, n, out.length - n, last ? Deflater.NO_FLUSH : Deflater.FULL_FLUSH);
                    if (last ? d.finished() : n < out.length) break; // a flush is done when output space is left over
                }
            }
            return Arrays.copyOf(out, n);
        } finally {
            d.end();
        }
    }

    static byte[] decompress(int type, byte[] in, int clusterSize, ImageFile file, long at) throws IOException {
        byte[] out = new byte[clusterSize];
        int n = type == Qcow2Header.COMPRESSION_ZSTD ? zstd(in, out, file, at) : deflate(in, out, file, at);
        if (n != clusterSize) {
            throw ImageException.corrupt(file.path(), at, "compressed cluster",
                    "compressed data decodes to " + n + " bytes, not a whole cluster of " + clusterSize);
        }
        return out;
    }

    /**
     * zlib compression type: a raw deflate stream (no zlib header). libdeflate decodes the usual case, a
     * stream that ends exactly at the cluster's end; anything else is left to zlib (java.util.zip), whose
     * rules qemu follows: decoding stops once the cluster is full.
     */
    private static int deflate(byte[] in, byte[] out, ImageFile file, long at) throws ImageException {
        if (Libdeflate.AVAILABLE && Libdeflate.decompressExactly(in, out)) return out.length;
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in);
            int n = 0;
            while (n < out.length) {
                int got = inflater.inflate(out, n, out.length - n);
                n += got;
                if (got == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) break;
            }
            return n;
        } catch (DataFormatException e) {
            throw ImageException.corrupt(file.path(), at, "compressed cluster", "bad deflate data: " + e.getMessage());
        } finally {
            inflater.end();
        }
    }

    private static int zstd(byte[] in, byte[] out, ImageFile file, long at) throws ImageException {
        try (ZstdInputStreamNoFinalizer z = new ZstdInputStreamNoFinalizer(new ByteArrayInputStream(in))) {
            return z.readNBytes(out, 0, out.length);
        } catch (IOException e) {
            throw ImageException.corrupt(file.path(), at, "compressed cluster", "bad zstd data: " + e.getMessage());
        }
    }
}
