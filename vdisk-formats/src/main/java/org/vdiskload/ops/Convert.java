package org.vdiskload.ops;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageCreator;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.Bytes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * qemu-img convert: copies a disk's content into a new image of any format that can be created.
 * Zero ranges stay unallocated; {@code compress} writes whole compressed clusters. On failure every
 * file the conversion created is removed.
 */
public final class Convert {
    private static final int ZERO_GRAIN = 4096;

    /**
     * @param options  the -o options
     * @param compress -c
     * @param reuse    -n: write into an existing image instead of creating one
     * @param refs     where the output's own references may lead (those of an image -n writes into)
     */
    public record Target(Path path, ImageFormat format, Map<String, String> options, boolean compress, boolean reuse,
                         ReferencePolicy refs) {
        public Target(Path path, ImageFormat format, Map<String, String> options, boolean compress, boolean reuse) {
            this(path, format, options, compress, reuse, ReferencePolicy.IMAGE_DIRECTORY);
        }
    }

    private Convert() {}

    public static void convert(DiskImage source, Target target, Progress progress) throws IOException {
        Targets.requireNotInChain(source, target.path());
        List<Path> created = List.of();
        boolean done = false;
        try {
            if (!target.reuse()) {
                ImageCreator creator = target.format().creator().orElseThrow(() -> ImageException.unsupported(target.path(),
                        "creating " + target.format().name() + " images is not supported"));
                created = creator.create(source.size(), new CreateOptions(target.path(), target.options(), null, null));
            }
            // A new output is not flushed, as qemu-img convert (cache=unsafe) does not: until convert
            // returns nobody relies on it, and a crash leaves a file to discard. -n writes into an image
            // the user keeps: that one gets the writers' usual flushes.
            try (DiskImage out = Images.open(target.path(), OpenOptions.DEFAULTS.withFormat(target.format().name())
                    .withWritable(true).withBacking(false).withFlush(target.reuse()).withRefs(target.refs()))) {
                if (out.size() < source.size()) {
                    throw ImageException.invalid(target.path(), "is smaller (" + out.size() + " bytes) than the source (" + source.size() + ")");
                }
                // A new stream-optimized VMDK compresses every grain: as with -c, on every core.
                boolean compressed = target.compress() || !target.reuse() && out.layers().get(0).writesCompressed();
                if (compressed) CompressedCopy.copy(source, out, progress);
                else copy(source, out, target.reuse(), progress);
                out.flush();
            }
            done = true;
        } finally {
            if (!done) for (Path p : created) Files.deleteIfExists(p);
        }
        progress.update(1.0);
    }

    /** Copies in disk order (a new image lays out clusters as they come), reading ahead on another thread. */
    private static void copy(DiskImage source, DiskImage out, boolean reuse, Progress progress) throws IOException {
        long size = source.size();
        try (ReadAhead reader = new ReadAhead(source)) {
            for (ReadAhead.Item item = reader.next(); !item.end(); item = reader.next()) {
                if (item.data() == null) {
                    // A new image reads zeros already; a reused one (-n) may not.
                    if (reuse) out.writeZeroes(item.start(), item.length(), true);
                } else {
                    writeNonZero(item.data(), out, item.start(), reuse);
                    reader.release(item.data());
                }
                progress.update((double) (item.start() + item.length()) / size);
            }
        }
    }

    /**
     * Writes {@code buf} at {@code pos}, leaving all-zero grains unwritten (or zeroed, on a reused image).
     * A grain is 4 KiB, or the output's allocation unit where that is larger: zeros inside a unit that
     * holds data take space anyway, and writing them saves the writer a write per piece.
     */
    private static void writeNonZero(ByteBuffer buf, DiskImage out, long pos, boolean reuse) throws IOException {
        long grain = Math.max(ZERO_GRAIN, out.layers().get(0).allocationUnit());
        int len = buf.limit();
        int runStart = -1;
        for (int g = 0; g < len; ) {
            // Grains are aligned on the disk, so a unit is never split between two grains.
            int gEnd = (int) Math.min(len, g + grain - Math.floorMod(pos + g, grain));
            boolean zero = Bytes.isZero(buf, g, gEnd);
            if (zero) {
                if (runStart >= 0) out.write(buf.duplicate().limit(g).position(runStart), pos + runStart);
                runStart = -1;
                if (reuse) out.writeZeroes(pos + g, gEnd - g, true);
            } else if (runStart < 0) {
                runStart = g;
            }
            g = gEnd;
        }
        if (runStart >= 0) out.write(buf.duplicate().limit(len).position(runStart), pos + runStart);
    }
}
