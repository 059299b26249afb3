package org.vdiskload.format.qcow2;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;
import org.vdiskload.io.WindowedDeflate;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Decompresses one compressed cluster. The stored bytes are rounded up to whole sectors, so the
 * stream may be followed by garbage: like qemu, decompress until the cluster is full and require
 * exactly that.
 */
final class Compression {
    /** zstd's default level, as qemu uses. */
    private static final int ZSTD_LEVEL = 3;

    private Compression() {}

    /** Compresses one cluster; null if the result would not fit in {@code limit} bytes (then qemu stores it plainly). */
    static byte[] compress(int type, byte[] in, int limit) {
        byte[] out = type == Qcow2Header.COMPRESSION_ZSTD ? Zstd.compress(in, ZSTD_LEVEL) : WindowedDeflate.compress(in, limit);
        return out == null || out.length > limit ? null : out;
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
