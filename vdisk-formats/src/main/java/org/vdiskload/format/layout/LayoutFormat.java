package org.vdiskload.format.layout;

import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.OpenContext;
import org.vdiskload.image.ProbeData;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Set;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A disk assembled from partition images by a JSON layout (disk-json-schema/layout.schema.json). Recognised
 * by content: a JSON object with the key {@code "vdiskload-layout"} in its first 4 KiB, in a file of at most
 * {@link #MAX_BYTES}. The size bound keeps a guest from turning its raw disk into a layout that reads host
 * files: a disk of more than 1 MiB can never probe as one.
 */
public final class LayoutFormat implements ImageFormat {
    public static final String NAME = "vdisk-layout";
    static final int MAX_BYTES = 1 << 20;

    private static final Pattern KEY = Pattern.compile("\"vdiskload-layout\"\\s*:");
    /** Sources are opened from here; a layout reached again while opening one is a loop (via a backing chain). */
    private static final ThreadLocal<Boolean> OPENING = ThreadLocal.withInitial(() -> false);

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public List<String> aliases() {
        return List.of("layout");
    }

    @Override
    public int probe(ProbeData data) {
        if (data.fileSize() > MAX_BYTES) return 0;
        ByteBuffer head = data.head();
        int p = 0;
        if (head.limit() >= 3 && (head.get(0) & 0xFF) == 0xEF && (head.get(1) & 0xFF) == 0xBB && (head.get(2) & 0xFF) == 0xBF) p = 3;
        while (p < head.limit() && Character.isWhitespace(head.get(p))) p++;
        if (p >= head.limit() || head.get(p) != '{') return 0;
        byte[] b = new byte[head.limit()];
        head.get(0, b);
        return KEY.matcher(new String(b, StandardCharsets.UTF_8)).find() ? MAGIC : 0;
    }

    /**
     * A file detected as raw that parses as a JSON object is a layout whose marker is missing or misspelt, most
     * likely. It stays a raw disk (a guest's raw disk must never pass for a layout), with a warning saying so.
     */
    @Override
    public String probeWarning(ImageFile file, ImageFormat detected) throws IOException {
        if (!detected.name().equals("raw") || !UnmarkedJson.in(file, MAX_BYTES)) return null;
        return "parses as JSON but has no \"vdiskload-layout\" marker, so it is read as a raw disk of " + file.size()
                + " bytes (add the marker to read it as a layout, or pass -f raw)";
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        if (OPENING.get()) throw ImageException.unsupported(file.path(), "a layout cannot be reached from one of its own sources");
        long size = file.size();
        if (size > MAX_BYTES) throw ImageException.invalid(file.path(), "a layout file is at most " + MAX_BYTES + " bytes");
        ByteBuffer content = ByteBuffer.allocate((int) size);
        file.readFully(content, 0, "layout");
        LayoutParser.Parsed parsed = LayoutParser.parse(file.path(), content.array());
        LayoutSpec spec = parsed.spec();
        List<PartitionSource> sources = new ArrayList<>();
        OPENING.set(true);
        try {
            long[] sizes = new long[spec.partitions().size()];
            for (LayoutSpec.Part p : spec.partitions()) {
                PartitionSource s = p.source() == null ? null : openSource(file.path(), parsed.lines(), p, spec.sectorSize(), context);
                sources.add(s);
                sizes[sources.size() - 1] = s == null ? -1 : s.size();
            }
            if (context.writable()) refuseSharedWrites(file.path(), parsed.lines(), spec, sources);
            DiskPlan plan = DiskPlan.of(file.path(), parsed.lines(), spec, sizes);
            return new LayoutLayer(file, plan, sources, Tables.build(plan), context.writable());
        } catch (IOException | RuntimeException e) {
            closeAll(sources);
            throw e;
        } finally {
            OPENING.set(false);
        }
    }

    /** Opens a partition's source: an image or a directory, where the context's reference policy allows. */
    private static PartitionSource openSource(Path layout, JsonLines lines, LayoutSpec.Part p, int sectorSize, OpenContext context)
            throws IOException {
        ReferencePolicy.Target target = ReferencePolicy.resolve(layout, p.source(), "source");
        Path path = target.path();
        if (target.real() != null) {
            // A device or fifo is refused before the rule, whatever it allows; a directory is a source here.
            if (!Files.isDirectory(target.real())) {
                try {
                    ImageFile.requireReferenceable(path, target.real());
                } catch (ImageException e) {
                    throw new ImageException(e.kind(), layout, ImageException.NO_OFFSET, null,
                            lines.locate(p.path() + ".source") + ": " + e.getMessage(), e);
                }
            }
            context.refs().requireAllowed(layout, p.source(), lines.locate(p.path() + ".source"), target);
        }
        boolean writable = context.writable();
        if (Files.isDirectory(path) && p.size() == null) {
            throw ImageException.invalid(layout, lines.locate(p.path()) + ": a directory source needs a size (the file system's)");
        }
        FileSystemKind kind = p.filesystem() == null ? FileSystemKind.EXT4 : p.filesystem();
        PartitionSource s;
        try {
            s = Files.isDirectory(path)
                    ? PartitionSource.built(DirectoryFileSystem.build(path, kind, p.size(), sectorSize), writable ? "is built from a directory" : null)
                    : PartitionSource.open(path, writable, p.readOnly(), p.size(), kind, sectorSize, context.refs());
        } catch (ImageException e) {
            throw new ImageException(e.kind(), layout, ImageException.NO_OFFSET, null,
                    lines.locate(p.path() + ".source") + ": " + e.getMessage(), e);
        }
        if (p.filesystem() != null && !s.builtFromTree) {
            s.close();
            throw ImageException.invalid(layout, lines.locate(p.path() + ".filesystem")
                    + ": only a directory or tar source is built into a file system; " + p.source() + " is an image");
        }
        return s;
    }

    /**
     * Two sources that share a file one of them writes (the same image twice, or one source's image beneath
     * another) would each cache its metadata and corrupt it: a layout opened for writing refuses them.
     */
    private static void refuseSharedWrites(Path layout, JsonLines lines, LayoutSpec spec, List<PartitionSource> sources) throws IOException {
        List<Set<Path>> read = new ArrayList<>();
        List<Set<Path>> written = new ArrayList<>();
        for (PartitionSource s : sources) {
            read.add(s == null ? Set.of() : realPaths(s.files()));
            written.add(s == null ? Set.of() : realPaths(s.writtenFiles()));
        }
        for (int j = 0; j < sources.size(); j++) {
            for (int i = 0; i < j; i++) {
                if (!Collections.disjoint(written.get(i), read.get(j)) || !Collections.disjoint(written.get(j), read.get(i))) {
                    throw ImageException.invalid(layout, lines.locate(spec.partitions().get(j).path() + ".source")
                            + ": shares a file with partition " + (i + 1) + "'s source, and one of them would be written;"
                            + " open the layout read-only");
                }
            }
        }
    }

    private static Set<Path> realPaths(List<ImageFile> files) throws IOException {
        Set<Path> out = new HashSet<>();
        for (ImageFile f : files) out.add(f.path().toRealPath());
        return out;
    }

    static void closeAll(List<? extends Closeable> items) {
        for (Closeable c : items) {
            if (c == null) continue;
            try {
                c.close();
            } catch (IOException ignored) {
                // closing read paths; nothing to save
            }
        }
    }
}
