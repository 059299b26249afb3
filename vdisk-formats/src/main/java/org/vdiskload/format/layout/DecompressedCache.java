package org.vdiskload.format.layout;

import org.apache.commons.compress.compressors.CompressorException;
import org.apache.commons.compress.compressors.CompressorStreamFactory;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Compressed partition sources (gzip, xz, bzip2, zstd, lz4 frames; recognised by magic, never by name),
 * decompressed once into a content-addressed cache: {@code <cache>/<sha256 of the compressed file>.raw},
 * sparse (all-zero blocks left as holes). Later opens of the same content reuse it. Decoding is commons-compress
 * (with zstd-jni for zstd and org.tukaani:xz for xz).
 *
 * <p>The cache directory: the system property {@code vdiskload.cache.dir}, else {@code $VDISKLOAD_CACHE_DIR},
 * else {@code $XDG_CACHE_HOME/vdiskload}, else {@code ~/.cache/vdiskload}.
 */
final class DecompressedCache {
    private DecompressedCache() {}

    private static final int BLOCK = 64 * 1024;

    /** commons-compress's name for the compression of {@code f}, or null if it is none of the five. */
    static String compression(ImageFile f) throws IOException {
        if (f.size() < 6) return null;
        ByteBuffer b = ByteBuffer.allocate(6);
        f.readFully(b, 0, "magic");
        byte[] m = b.array();
        if ((m[0] & 0xFF) == 0x1F && (m[1] & 0xFF) == 0x8B) return CompressorStreamFactory.GZIP;
        if ((m[0] & 0xFF) == 0xFD && m[1] == '7' && m[2] == 'z' && m[3] == 'X' && m[4] == 'Z' && m[5] == 0) return CompressorStreamFactory.XZ;
        if (m[0] == 'B' && m[1] == 'Z' && m[2] == 'h' && m[3] >= '1' && m[3] <= '9') return CompressorStreamFactory.BZIP2;
        if (m[0] == 0x28 && (m[1] & 0xFF) == 0xB5 && m[2] == 0x2F && (m[3] & 0xFF) == 0xFD) return CompressorStreamFactory.ZSTANDARD;
        if (m[0] == 0x04 && m[1] == 0x22 && m[2] == 0x4D && m[3] == 0x18) return CompressorStreamFactory.LZ4_FRAMED;
        return null;
    }

    static Path directory() {
        String p = System.getProperty("vdiskload.cache.dir");
        if (p == null || p.isEmpty()) p = System.getenv("VDISKLOAD_CACHE_DIR");
        if (p != null && !p.isEmpty()) return Path.of(p);
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isEmpty() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("vdiskload");
    }

    /** The decompressed copy of {@code f} (compressed with {@code compression}), made now if the cache lacks it. */
    static Path decompressed(ImageFile f, String compression) throws IOException {
        Path dir = directory();
        Path cached = dir.resolve(sha256(f) + ".raw");
        if (Files.isRegularFile(cached)) return cached;
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw ImageException.invalid(dir, "cannot create the decompression cache: " + e.getMessage());
        }
        Path tmp = Files.createTempFile(dir, ".partial-", ".raw");
        try {
            try (InputStream in = new CompressorStreamFactory(true).createCompressorInputStream(compression,
                    new java.io.BufferedInputStream(Files.newInputStream(f.path()), BLOCK));
                 RandomAccessFile out = new RandomAccessFile(tmp.toFile(), "rw")) {
                writeSparse(in, out);
            } catch (CompressorException | IOException e) {
                throw ImageException.corrupt(f.path(), ImageException.NO_OFFSET, null,
                        "cannot decompress (" + compression + "): " + e.getMessage());
            }
            // Concurrent makers of the same entry write identical bytes; the last rename wins harmlessly.
            Files.move(tmp, cached, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return cached;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static void writeSparse(InputStream in, RandomAccessFile out) throws IOException {
        byte[] buf = new byte[BLOCK];
        long pos = 0;
        while (true) {
            int n = in.readNBytes(buf, 0, BLOCK);
            if (n <= 0) break;
            if (!allZero(buf, n)) {
                out.seek(pos);
                out.write(buf, 0, n);
            }
            pos += n;
        }
        out.setLength(pos);
        out.getFD().sync();
    }

    private static boolean allZero(byte[] b, int n) {
        for (int i = 0; i < n; i++) if (b[i] != 0) return false;
        return true;
    }

    static String sha256(ImageFile f) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);
        long size = f.size();
        for (long pos = 0; pos < size; ) {
            buf.clear().limit((int) Math.min(buf.capacity(), size - pos));
            f.readFully(buf, pos, "compressed data");
            md.update(buf.array(), 0, buf.position());
            pos += buf.position();
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
