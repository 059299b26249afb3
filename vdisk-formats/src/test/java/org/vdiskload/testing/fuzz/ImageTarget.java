package org.vdiskload.testing.fuzz;

import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The body of every image fuzz target. The input's first byte holds flags, the rest is a {@link SparseFile}
 * (or, for a target made {@link #plain}, the file itself: a text descriptor, a JSON layout):
 * <ul>
 *   <li>bit 0: recompute the format's checksums after decoding (so mutations get past CRC checks to the code behind them);</li>
 *   <li>bit 1: detect the format by content instead of naming it (every probe then sees the bytes);</li>
 *   <li>bit 2: open without the backing chain (as {@code info} and {@code check} do);</li>
 *   <li>bit 3: also check the top layer's metadata (report only, as {@code vdiskload check}): costly, so only
 *       for the inputs that ask;</li>
 *   <li>bits 4-7: the target's own variants (see {@link Options}).</li>
 * </ul>
 * One execution opens the image, checks the {@link DiskInvariants} and asks every layer for its info. Each step
 * may end in an {@link org.vdiskload.image.error.ImageException} (see {@link Outcomes}); anything else is a
 * finding, and so is an allocation past the {@link AllocationBudget}.
 */
public final class ImageTarget {
    /** Recomputes a format's checksums in the decoded file. */
    @FunctionalInterface
    public interface Reseal {
        void apply(Path image) throws IOException;
    }

    /** Which file to open for an input's flags, once the input is written (by default the input's own). */
    @FunctionalInterface
    public interface Opening {
        Path apply(Path image, int flags) throws IOException;
    }

    /** The open options for an input's flags, beyond the common ones. */
    @FunctionalInterface
    public interface Options {
        OpenOptions apply(OpenOptions base, int flags);
    }

    public static final int RESEAL = 1, DETECT = 2, NO_BACKING = 4, CHECK = 8;

    private final String format;
    private final Sandbox sandbox;
    private final Path image;
    private final Set<String> companions = new HashSet<>();
    private Reseal reseal;
    private boolean plain;
    private Options options = (base, flags) -> base;
    private Opening opening = (path, flags) -> path;

    public ImageTarget(String format, String fileName) {
        this.format = format;
        this.sandbox = Sandbox.create(format);
        this.image = sandbox.path(fileName);
        companions.add(fileName);
        warmUp();
    }

    /**
     * Maps and reads a small raw file once, outside any allocation bound: the first hole query loads JNA and
     * binds the C library, which under Jazzer's agent allocates some 20 MiB in the calling thread.
     */
    private void warmUp() {
        try {
            Path raw = sandbox.put("warm-up.raw", Companions.pattern(4096, 0));
            try (DiskImage disk = Images.open(raw, OpenOptions.DEFAULTS.withFormat("raw"))) {
                disk.map(0, disk.size());
                disk.read(java.nio.ByteBuffer.allocate(4096), 0);
            }
            Files.delete(raw);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public ImageTarget reseal(Reseal r) {
        this.reseal = r;
        return this;
    }

    public ImageTarget opening(Opening o) {
        this.opening = o;
        return this;
    }

    /** The input after the flags byte is the file as it is, not a {@link SparseFile}. */
    public ImageTarget plain() {
        this.plain = true;
        return this;
    }

    public ImageTarget options(Options o) {
        this.options = o;
        return this;
    }

    /** A file every execution finds beside the image (a backing file, an extent). */
    public ImageTarget companion(String name, byte[] content) {
        try {
            sandbox.put(name, content);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        companions.add(name);
        return this;
    }

    /** A {@code format} image every execution finds beside the input's, made now (see {@link Companions#image}). */
    public ImageTarget companionImage(String name, String format, long size, Map<String, String> createOptions) {
        Companions.image(sandbox, name, format, size, createOptions);
        companions.add(name);
        return this;
    }

    public Sandbox sandbox() {
        return sandbox;
    }

    public void run(byte[] input) throws IOException {
        int flags = input.length > 0 ? input[0] & 0xff : 0;
        int from = Math.min(1, input.length);
        if (plain) Files.write(image, Arrays.copyOfRange(input, from, input.length));
        else SparseFile.write(input, from, image);
        if (reseal != null && (flags & RESEAL) != 0) reseal.apply(image);
        run(flags);
    }

    /** Opens the image as written and runs the checks; an allocation bound must be exceeded twice to count. */
    private void run(int flags) throws IOException {
        try {
            runOnce(flags);
        } catch (AllocationBudget.Exceeded first) {
            runOnce(flags);
        }
    }

    private void runOnce(int flags) throws IOException {
        OpenOptions o = OpenOptions.DEFAULTS.withCacheBytes(1 << 20).withBacking((flags & NO_BACKING) == 0);
        if ((flags & DETECT) == 0) o = o.withFormat(format);
        OpenOptions opts = options.apply(o, flags);
        Path open = opening.apply(image, flags);
        long openBound = AllocationBudget.forFiles(sandboxBytes());
        Outcomes.expect(() -> {
            try (DiskImage disk = AllocationBudget.within(openBound, "opening the image", () -> Images.open(open, opts))) {
                Outcomes.expect(() -> DiskInvariants.check(disk));
                for (ImageLayer layer : disk.layers()) Outcomes.expect(() -> AllocationBudget.within(openBound, "info", layer::info));
                if ((flags & CHECK) != 0) {
                    Outcomes.expect(() -> AllocationBudget.within(openBound, "check", () -> disk.layers().get(0).check(RepairMode.NONE)));
                }
            }
        });
        sandbox.clearExcept(companions);
    }

    private long sandboxBytes() throws IOException {
        long total = 0;
        try (Stream<Path> s = Files.walk(sandbox.dir())) {
            for (Path p : (Iterable<Path>) s::iterator) if (Files.isRegularFile(p)) total += Files.size(p);
        }
        return total;
    }
}
