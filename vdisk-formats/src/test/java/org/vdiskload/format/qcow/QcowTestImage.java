package org.vdiskload.format.qcow;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.Deflater;

/**
 * A small qcow image built byte by byte (header from {@link QcowHeaderTest#header()}), so tests
 * know every offset. 64 KiB disk, 512-byte clusters, 64-entry L2 tables:
 * <pre>
 *     0  header (48 bytes)
 *    48  L1 table: [0] = 512, [1] = 0 (second 32 KiB unallocated)
 *   512  L2 table: [0] = 1024 (data), [1] = compressed at 1536, others 0
 *  1024  cluster 0: 512 bytes of 0xab
 *  1536  cluster 1: raw deflate of 512 bytes of 0xcd
 * </pre>
 */
final class QcowTestImage {
    static final int L1 = 48;
    static final int L2 = 512;
    static final int DATA = 1024;
    static final int COMPRESSED = 1536;

    private QcowTestImage() {}

    static byte[] deflate(byte[] data) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setInput(data);
        d.finish();
        byte[] out = new byte[data.length + 64];
        int n = d.deflate(out);
        d.end();
        return Arrays.copyOf(out, n);
    }

    static byte[] filled(int value) {
        byte[] b = new byte[512];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** L2 entry for a compressed cluster of {@code size} bytes at {@code offset} (9 cluster bits). */
    static long compressedEntry(long offset, int size) {
        return QcowCluster.COMPRESSED_FLAG | ((long) size << (63 - 9)) | offset;
    }

    static byte[] bytes() {
        byte[] compressed = deflate(filled(0xcd));
        ByteBuffer b = ByteBuffer.allocate(COMPRESSED + compressed.length).order(ByteOrder.BIG_ENDIAN);
        b.put(QcowHeaderTest.header());
        b.putLong(L1, L2);
        b.putLong(L2, DATA);
        b.putLong(L2 + 8, compressedEntry(COMPRESSED, compressed.length));
        b.put(DATA, filled(0xab));
        b.put(COMPRESSED, compressed);
        return b.array();
    }

    static Path write(Path dir, String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    static Path write(Path dir) throws IOException {
        return write(dir, "built.qcow", bytes());
    }
}
