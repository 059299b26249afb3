package org.vdiskload.testing.fuzz;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * How an image target's input becomes a file: a list of chunks, each written at its offset into an
 * otherwise zero (sparse) file. A few kilobytes of input so describe a file of megabytes: a VHDX puts its
 * regions at 1 MiB boundaries, a VMDK's grains are 64 KiB, qemu-img's qcow2 clusters 64 KiB; the fuzzer
 * mutates the bytes that matter and the holes cost nothing.
 *
 * <pre>
 *   input := chunk*
 *   chunk := offset (u32, little-endian) | length (u16, little-endian) | length bytes (fewer at the input's end)
 * </pre>
 * The file ends where the last-ending chunk ends; offsets are taken modulo {@link #MAX_FILE} so no input makes
 * a file larger than 64 MiB plus one chunk. Later chunks overwrite earlier ones.
 */
public final class SparseFile {
    public static final long MAX_FILE = 64L << 20;
    private static final int HEADER = 6;

    /** One run of bytes at an offset. */
    public record Chunk(long offset, byte[] data) {}

    private SparseFile() {}

    public static List<Chunk> decode(byte[] input, int from) {
        List<Chunk> out = new ArrayList<>();
        ByteBuffer b = ByteBuffer.wrap(input, from, input.length - from).slice().order(ByteOrder.LITTLE_ENDIAN);
        while (b.remaining() >= HEADER) {
            long offset = Integer.toUnsignedLong(b.getInt()) % MAX_FILE;
            int length = Math.min(Short.toUnsignedInt(b.getShort()), b.remaining());
            byte[] data = new byte[length];
            b.get(data);
            out.add(new Chunk(offset, data));
        }
        return out;
    }

    /** Writes the chunks of {@code input} (from byte {@code from} on) to {@code file}, replacing its content; returns its size. */
    public static long write(byte[] input, int from, Path file) throws IOException {
        return write(decode(input, from), file);
    }

    public static long write(List<Chunk> chunks, Path file) throws IOException {
        long end = 0;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ)) {
            ch.truncate(0);
            for (Chunk c : chunks) {
                ByteBuffer data = ByteBuffer.wrap(c.data());
                long pos = c.offset();
                while (data.hasRemaining()) pos += ch.write(data, pos);
                end = Math.max(end, c.offset() + c.data().length);
            }
            // A chunk of zeros at the end still sets the length: write() of zero bytes does not extend a file.
            if (ch.size() < end) ch.write(ByteBuffer.allocate(1), end - 1);
        }
        return end;
    }

    /**
     * The input describing {@code content}: its non-zero runs (at {@code grain}-byte granularity, split at
     * 64 KiB - 1), and always its last grain, so the file keeps its length.
     */
    public static byte[] encode(byte[] content, int grain) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int n = content.length;
        int pos = 0;
        while (pos < n) {
            if (zero(content, pos, Math.min(n, pos + grain)) && pos + grain < n) {
                pos += grain;
                continue;
            }
            int end = pos;
            while (end < n && end - pos < 0xffff && !(zero(content, end, Math.min(n, end + grain)) && end + grain < n)) {
                end = Math.min(n, end + grain);
            }
            end = Math.min(end, pos + 0xffff);
            chunk(out, pos, content, pos, end - pos);
            pos = end;
        }
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, long offset, byte[] src, int from, int length) {
        ByteBuffer h = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN).putInt((int) offset).putShort((short) length);
        out.write(h.array(), 0, HEADER);
        out.write(src, from, length);
    }

    private static boolean zero(byte[] b, int from, int to) {
        for (int i = from; i < to; i++) if (b[i] != 0) return false;
        return true;
    }
}
