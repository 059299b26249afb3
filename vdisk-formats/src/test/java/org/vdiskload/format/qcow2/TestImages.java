package org.vdiskload.format.qcow2;

import org.vdiskload.io.ImageFile;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/** Small qemu-made images for the damage and fuzz tests, and helpers to patch them. */
final class TestImages {
    private TestImages() {}

    /** Makes a qcow2 image with qemu-img and writes to it with qemu-io. */
    static Path make(Path dir, String name, String options, String size, String... io) throws Exception {
        Path p = dir.resolve(name);
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-o", options, p.toString(), size);
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (String c : io) cmd.addAll(List.of("-c", c));
        cmd.add(p.toString());
        if (io.length > 0) Tools.check(cmd.toArray(String[]::new));
        return p;
    }

    static Qcow2Header header(Path p) throws IOException {
        try (ImageFile f = ImageFile.open(p, false)) {
            return Qcow2Header.read(f);
        }
    }

    static long readLong(Path p, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, at);
            return b.flip().getLong();
        }
    }

    static void writeLong(Path p, long at, long value) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, value), at);
        }
    }

    static void writeInt(Path p, long at, int value) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(4).putInt(0, value), at);
        }
    }

    static void writeShort(Path p, long at, short value) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(2).putShort(0, value), at);
        }
    }

    /** File offset of the L1 entry for L1 index 0, and of the first L2 table's entry {@code index}. */
    static long l1Entry(Path p) throws IOException {
        return header(p).l1TableOffset();
    }

    static long l2Entry(Path p, int index) throws IOException {
        Qcow2Header h = header(p);
        return (readLong(p, h.l1TableOffset()) & ClusterMap.L1_OFFSET_MASK) + (long) index * h.l2EntryBytes();
    }

}
