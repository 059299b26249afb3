package org.vdiskload.image;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.image.error.RefusedReference;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/** Opens images: detects formats by content and follows backing chains safely. */
public final class Images {
    /** Longer chains than this are refused: a guard against hostile images, far beyond real use. */
    static final int MAX_CHAIN_DEPTH = 1024;

    /** The list of formats, above the {@code format} packages; looked up by name so this package imports none. */
    private static final String FORMAT_LIST = "org.vdiskload.formats.Formats";

    /** The formats, in probe order (see {@code org.vdiskload.formats.Formats}). */
    private static volatile List<ImageFormat> formats = builtIn();

    private Images() {}

    @SuppressWarnings("unchecked")
    private static List<ImageFormat> builtIn() {
        try {
            return List.copyOf(((java.util.function.Supplier<List<ImageFormat>>) Class.forName(FORMAT_LIST)
                    .getDeclaredConstructor().newInstance()).get());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("the library's format list " + FORMAT_LIST + " is missing", e);
        }
    }

    /** Every known format. */
    public static List<ImageFormat> formats() {
        return formats;
    }

    /**
     * Adds a format from outside the library, probed ahead of the built-in ones (the tests' own
     * format is one). A format already known by its name is not added again.
     */
    public static synchronized void register(ImageFormat format) {
        if (byName(format.name()).isPresent()) return;
        List<ImageFormat> list = new ArrayList<>(formats.size() + 1);
        list.add(format);
        list.addAll(formats);
        formats = List.copyOf(list);
    }

    /** The format with this name or alias, if any. */
    public static Optional<ImageFormat> byName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return formats.stream().filter(f -> f.name().equals(n) || f.aliases().contains(n)).findFirst();
    }

    private static ImageFormat requireFormat(String name, Path path) throws ImageException {
        return byName(name).orElseThrow(() -> ImageException.unsupported(path, "unknown image format '" + name + "'"));
    }

    /** Opens {@code path} with its backing chain. */
    public static DiskImage open(Path path, OpenOptions options) throws IOException {
        List<ImageLayer> layers = new ArrayList<>();
        try {
            ImageFile top = ImageFile.open(path, options.writable(), options.flush());
            ImageFormat format = options.format() != null ? requireFormat(options.format(), path) : detect(top);
            if (options.format() == null) {
                for (ImageFormat f : formats) {
                    String warning = f.probeWarning(top, format);
                    if (warning != null) Warnings.warn(path + ": " + warning);
                }
            }
            layers.add(openLayer(format, top, new OpenContext(options.snapshot(), options.cacheBytes(), options.writable(), options.flush(), options.refs(),
                    options.repair(), options.fullOverlapCheck())));
            Set<Path> seen = new HashSet<>();
            seen.add(identity(path));
            ImageLayer current = layers.get(0);
            while (options.withBacking() && current.backing().isPresent()) {
                if (layers.size() >= MAX_CHAIN_DEPTH) {
                    throw ImageException.invalid(path, "backing chain is deeper than " + MAX_CHAIN_DEPTH + " images");
                }
                ImageLayer next = openBacking(current, current.backing().get(), seen, options);
                layers.add(next);
                current.checkBacking(next);
                current = next;
            }
            ChainImage image = new ChainImage(layers);
            if (options.metadataWriteThrough() && image.isWritable()) image.setMetadataWriteThrough(true);
            return image;
        } catch (IOException | RuntimeException e) {
            closeQuietly(layers, e);
            throw e;
        }
    }

    private static ImageLayer openBacking(ImageLayer child, BackingRef ref, Set<Path> seen, OpenOptions options) throws IOException {
        Path childPath = child.file().path();
        if (ref.unresolved() != null) throw ImageException.invalid(childPath, ref.unresolved());
        ImageFile file = openBackingFile(childPath, ref, options.refs());
        Path path = file.path();
        try {
            if (!seen.add(identity(path))) {
                throw ImageException.invalid(childPath, "backing chain has a cycle: " + path + " appears twice");
            }
            ImageFormat format;
            if (ref.format() != null) {
                format = requireFormat(ref.format(), childPath);
            } else {
                format = detect(file);
                if (!format.name().equals("raw")) {
                    if (options.backingFormat() != null) {
                        format = requireFormat(options.backingFormat(), childPath);
                    } else {
                        throw ImageException.unsupported(childPath, "backing file " + path + " looks like a " + format.name()
                                + " image but the image does not name the backing format; refusing to guess"
                                + " (pass --backing-format " + format.name() + recordHint(child, format, ref) + ")");
                    }
                }
            }
            return openLayer(format, file, new OpenContext(null, options.cacheBytes(), false, true, options.refs(), false, false));
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /**
     * Opens the first of {@code ref}'s names that leads to a regular file {@code refs} allows (a VHD or VHDX
     * differencing disk names its parent several ways). When none does, the first refusal if one was
     * refused (it says how to allow the file), else why the first name leading to something failed (a
     * device...), else that the first is missing; the other names follow.
     */
    private static ImageFile openBackingFile(Path childPath, BackingRef ref, ReferencePolicy refs) throws IOException {
        RefusedReference refused = null;
        ImageException failed = null;
        List<Path> tried = new ArrayList<>();
        for (String name : ref.names()) {
            try {
                return refs.open(childPath, name, "backing file", false, true);
            } catch (RefusedReference e) {
                if (refused == null) refused = e;
            } catch (ImageException e) {
                if (e.kind() == ImageException.Kind.CORRUPT) throw e; // the name itself is invalid
                if (failed == null || missing(failed) && !missing(e)) { // a name that leads somewhere says more
                    if (failed != null) tried.add(failed.path());
                    failed = e;
                } else {
                    tried.add(e.path());
                }
            }
        }
        if (refused != null) throw refused;
        throw new ImageException(failed.kind(), childPath, ImageException.NO_OFFSET, null, "cannot open backing file "
                + ReferencePolicy.printable(failed.path().toString()) + ": " + failed.problem()
                + (tried.isEmpty() ? "" : " (nor at the other names the image gives it: " + ReferencePolicy.printable(tried.toString()) + ")"));
    }

    private static boolean missing(ImageException e) {
        return e.problem().equals("no such file");
    }

    /** How to record the backing format in the image itself, where its format can (qcow v1 cannot). */
    private static String recordHint(ImageLayer child, ImageFormat backingFormat, BackingRef ref) {
        if (child.formatName().equals("qcow")) return "";
        return ", or record it with 'qemu-img rebase -u -F " + backingFormat.name() + " -b " + ref.name()
                + " " + child.file().path() + "'";
    }

    /** Opens one layer, closing the file on failure and turning parser bugs on hostile input into one clear error. */
    private static ImageLayer openLayer(ImageFormat format, ImageFile file, OpenContext context) throws IOException {
        try {
            return format.open(file, context);
        } catch (IOException e) {
            file.close();
            throw e;
        } catch (RuntimeException e) {
            file.close();
            throw new ImageException(ImageException.Kind.CORRUPT, file.path(), ImageException.NO_OFFSET, null,
                    "malformed " + format.name() + " image (" + e + ")", e);
        }
    }

    /** Detects the format of an open file by its content. */
    public static ImageFormat detect(ImageFile file) throws IOException {
        long size = file.size();
        if (size == 0) throw ImageException.invalid(file.path(), "is empty (0 bytes), not a disk image");
        ByteBuffer head = ByteBuffer.allocate((int) Math.min(ProbeData.HEAD_BYTES, size)).order(ByteOrder.LITTLE_ENDIAN);
        file.readFully(head, 0, "header");
        ByteBuffer tail = ByteBuffer.allocate((int) Math.min(ProbeData.TAIL_BYTES, size)).order(ByteOrder.LITTLE_ENDIAN);
        file.readFully(tail, size - tail.capacity(), "footer");
        ProbeData data = new ProbeData(head.flip(), tail.flip(), size);
        ImageFormat best = null;
        int bestScore = 0;
        for (ImageFormat f : formats) {
            int s = f.probe(data);
            if (s > bestScore) {
                best = f;
                bestScore = s;
            }
        }
        if (best == null) throw ImageException.unsupported(file.path(), "unknown image format");
        return best;
    }

    private static Path identity(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }

    static void closeAll(List<? extends java.io.Closeable> items) throws IOException {
        IOException first = null;
        for (java.io.Closeable c : items) {
            try {
                c.close();
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    private static void closeQuietly(List<? extends java.io.Closeable> items, Throwable primary) {
        try {
            closeAll(items);
        } catch (IOException e) {
            primary.addSuppressed(e);
        }
    }
}
