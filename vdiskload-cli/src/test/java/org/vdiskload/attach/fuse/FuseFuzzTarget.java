package org.vdiskload.attach.fuse;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.Finding;
import org.vdiskload.testing.fuzz.Outcomes;
import org.vdiskload.testing.fuzz.Sandbox;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.vdiskload.attach.fuse.Fuse.*;

/**
 * Coverage-guided fuzzing of the FUSE request decoder and file system: what the kernel could hand a worker
 * from /dev/fuse, decoded ({@link Request#parse}) and answered ({@link Handshake#reply} for INIT, {@link FuseOps}
 * otherwise) as {@link FuseWorker} does. The input is a list of reads, each a u16 length (little-endian) and
 * that many bytes placed in the worker's buffer, so a request's header may disagree with the read's length.
 * The mount shows "disk", a read-only 1 MiB raw image, and "p1", bytes [256 KiB, 512 KiB) of it, writable.
 *
 * <p>Findings: anything but a FuseError or an ImageException (a RuntimeException is answered EIO in the worker,
 * hiding a bug), a reply longer than the out buffer or than a READ asked for, and a change to the image outside p1.
 */
class FuseFuzzTarget {
    private static final int DISK_BYTES = 1 << 20, P1_START = 256 << 10, P1_LENGTH = 256 << 10;
    private static final Sandbox SANDBOX = Sandbox.create("fuse");
    private static final byte[] ORIGINAL = Companions.pattern(DISK_BYTES, 17);
    private static final Path DISK_FILE;
    /** The image file as it is now (mapped once: comparing costs no read per execution). */
    private static final java.nio.MappedByteBuffer NOW;
    private static final FuseOps OPS;
    private static final ByteBuffer IN = ByteBuffer.allocateDirect(MAX_IO + 4096).order(ByteOrder.nativeOrder());
    private static final ByteBuffer OUT = ByteBuffer.allocateDirect(OUT_HEADER + MAX_IO).order(ByteOrder.nativeOrder());
    private static final Request REQUEST = new Request(IN);

    static {
        try {
            DISK_FILE = SANDBOX.put("disk.raw", ORIGINAL);
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(DISK_FILE)) {
                NOW = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, DISK_BYTES);
            }
            DiskImage disk = Images.open(DISK_FILE, OpenOptions.DEFAULTS.withFormat("raw").withWritable(true));
            OPS = new FuseOps(List.of(new FuseFile("disk", disk, 0, DISK_BYTES, false),
                    new FuseFile("p1", disk, P1_START, P1_LENGTH, true)), true);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest
    @DictionaryFile(resourcePath = "fuse.dict")
    void requests(byte[] input) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
        while (b.remaining() >= 2) {
            int n = Math.min(Short.toUnsignedInt(b.getShort()), b.remaining());
            IN.clear();
            IN.put(0, input, b.position(), n);
            b.position(b.position() + n);
            serve(n);
        }
        if (Files.size(DISK_FILE) != DISK_BYTES) throw new Finding("the image is now " + Files.size(DISK_FILE) + " bytes");
        ByteBuffer original = ByteBuffer.wrap(ORIGINAL);
        if (NOW.slice(0, P1_START).mismatch(original.slice(0, P1_START)) >= 0
                || NOW.slice(P1_START + P1_LENGTH, DISK_BYTES - P1_START - P1_LENGTH)
                        .mismatch(original.slice(P1_START + P1_LENGTH, DISK_BYTES - P1_START - P1_LENGTH)) >= 0) {
            throw new Finding("a write reached the image outside p1");
        }
    }

    /** One request of {@code n} bytes, as {@link FuseWorker#serve} handles it. */
    private static void serve(int n) {
        Outcomes.expect(() -> {
            int payload;
            try {
                REQUEST.parse(n);
                payload = REQUEST.opcode == INIT ? Handshake.reply(REQUEST, OUT) : OPS.handle(REQUEST, OUT);
            } catch (FuseError e) {
                if (e.errno <= 0) throw new Finding("errno " + e.errno);
                return;
            }
            if (payload == FuseOps.NO_REPLY) return;
            if (payload < 0 || payload > OUT.capacity() - OUT_HEADER) throw new Finding("reply payload of " + payload + " bytes");
            if (REQUEST.opcode == READ && payload > (REQUEST.u32(16) & 0xffffffffL)) {
                throw new Finding("READ of " + (REQUEST.u32(16) & 0xffffffffL) + " bytes answered with " + payload);
            }
        });
    }
}
