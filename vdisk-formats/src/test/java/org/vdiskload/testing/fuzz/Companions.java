package org.vdiskload.testing.fuzz;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.ops.Create;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;

/** Small files a target's images may refer to (backing files, extents), made once per JVM with the library itself. */
public final class Companions {
    private Companions() {}

    /** {@code size} bytes of a pattern that differs at every 512-byte sector, so a wrong offset shows. */
    public static byte[] pattern(int size, int seed) {
        byte[] b = new byte[size];
        for (int i = 0; i < size; i++) b[i] = (byte) (seed + i / 512 * 7 + (i & 0xff));
        return b;
    }

    /**
     * Makes {@code name} in the sandbox: a {@code format} image of {@code size} bytes ({@code options} as qemu-img's
     * -o), with {@link #pattern} data written in every other 4 KiB block of its first 64 KiB.
     */
    public static void image(Sandbox sandbox, String name, String format, long size, Map<String, String> options) {
        try {
            Path p = sandbox.path(name);
            Create.create(p, Images.byName(format).orElseThrow(), size, options, null, null);
            try (DiskImage d = Images.open(p, OpenOptions.DEFAULTS.withFormat(format).withWritable(true))) {
                byte[] data = pattern((int) Math.min(size, 64 << 10), name.length());
                for (int at = 0; at < data.length; at += 8192) d.write(ByteBuffer.wrap(data, at, Math.min(4096, data.length - at)), at);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
