package org.vdiskload.format.layout;

import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * A tree built rootless into a FAT file system: {@code mkfs.fat} (dosfstools) makes an empty one of the
 * partition's size, {@code mcopy -s -p -m} (mtools) copies the tree in. FAT holds names, contents and times:
 * owners and modes are dropped, hard links become separate copies, and what FAT cannot hold is refused,
 * naming the file: symbolic links, device nodes, fifos and sockets, files of 4 GiB or more, names with a
 * character FAT refuses or ending in a dot or space, names that differ only in case. Times outside FAT's
 * range (1980 to 2107) are clamped to it; times are written as UTC.
 */
final class FatFileSystem {
    private FatFileSystem() {}

    /**
     * FAT32 from this many sectors up, below it FAT12/16 as mkfs.fat picks. FAT32 is what the UEFI spec asks
     * of an ESP and has no fixed-size root directory, but drivers tell the FAT type by the cluster count, so it
     * needs 65525 clusters: with one-sector clusters, mkfs.fat's reserved sectors, two FATs and alignment,
     * that is just over 66,600 sectors; 68 Ki keeps clear of the edge.
     */
    static final long FAT32_MIN_SECTORS = 68 * 1024;
    /** FAT's file size field is 32 bits. */
    private static final long MAX_FILE = 0xFFFFFFFFL;
    private static final Instant FIRST_TIME = Instant.parse("1980-01-01T00:00:00Z");
    private static final Instant LAST_TIME = Instant.parse("2107-12-31T23:59:58Z");
    /** Characters no FAT long name may hold (besides control characters). */
    private static final String REFUSED_CHARACTERS = "\"*/:<>?\\|";
    /** A long name's limit, in UTF-16 code units. */
    private static final int MAX_NAME = 255;

    /**
     * Builds {@code out}, a FAT file system of {@code size} bytes (sectors of {@code sectorSize}) holding
     * {@code tree}; its volume ID derives from {@code key}. A {@code scratch} tree is vdiskload's own (an
     * unpacked archive) and has its out-of-range times clamped in place; any other is copied first if it has any.
     */
    static void build(Path subject, Path tree, boolean scratch, Path out, long size, int sectorSize, String key) throws IOException {
        List<Path> top = check(subject, tree);
        UUID id = UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.US_ASCII));
        List<String> mkfs = new ArrayList<>(List.of("mkfs.fat", "--invariant", "-i", String.format("%08x", id.getMostSignificantBits() >>> 32),
                "-S", Integer.toString(sectorSize)));
        if (size / sectorSize >= FAT32_MIN_SECTORS) mkfs.addAll(List.of("-F", "32"));
        mkfs.add(out.toString());
        try (RandomAccessFile f = new RandomAccessFile(out.toFile(), "rw")) {
            f.setLength(size);
        }
        Map<String, String> env = Map.of("TZ", "UTC", "LC_ALL", "C.UTF-8", "MTOOLS_SKIP_CHECK", "1");
        DirectoryFileSystem.run(subject, mkfs, env, "dosfstools", "mkfs.fat failed (is the partition size large enough?)");
        if (top.isEmpty()) return;
        Path source = tree;
        Path copy = null;
        try {
            if (hasTimesOutOfRange(tree)) {
                if (!scratch) source = copy = copyTree(tree);
                clampTimes(source);
            }
            List<String> mcopy = new ArrayList<>(List.of("mcopy", "-s", "-p", "-m", "-i", out.toString()));
            for (Path p : top) mcopy.add(source.resolve(p.getFileName().toString()).toAbsolutePath().toString());
            mcopy.add("::");
            // mtools's clock, for anything it stamps rather than copies (-m copies file and directory times): the same bytes each build
            Map<String, String> withEpoch = new HashMap<>(env);
            withEpoch.put("SOURCE_DATE_EPOCH", Long.toString(DirectoryFileSystem.newestMtime(source)));
            DirectoryFileSystem.run(subject, mcopy, withEpoch, "mtools", "mcopy failed (is the partition size large enough?)");
        } finally {
            if (copy != null) TarFileSystem.deleteTree(copy);
        }
    }

    /** Refuses what FAT cannot hold, naming the first such entry; returns the tree's top-level entries, sorted. */
    private static List<Path> check(Path subject, Path tree) throws IOException {
        List<Path> entries = walk(tree);
        Map<String, String> seen = new HashMap<>();
        List<Path> top = new ArrayList<>();
        for (Path p : entries) {
            if (p.equals(tree)) continue;
            String rel = tree.relativize(p).toString();
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (a.isSymbolicLink()) throw refused(subject, rel, "the symbolic link");
            if (a.isOther()) throw refused(subject, rel, "the device node, fifo or socket");
            if (a.isRegularFile() && a.size() > MAX_FILE) throw refused(subject, rel, "the file of 4 GiB or more");
            String name = p.getFileName().toString();
            String problem = nameProblem(name);
            if (problem != null) throw ImageException.unsupported(subject, "vfat cannot hold the name " + printable(rel) + ": " + problem);
            String folded = tree.relativize(p.getParent()) + "/" + name.toUpperCase(Locale.ROOT);
            String other = seen.putIfAbsent(folded, rel);
            if (other != null) throw ImageException.unsupported(subject, "vfat cannot hold both " + printable(other) + " and "
                    + printable(rel) + ": FAT names ignore case");
            if (p.getParent().equals(tree)) top.add(p);
        }
        return top;
    }

    private static ImageException refused(Path subject, String rel, String what) {
        return ImageException.unsupported(subject, "vfat cannot hold " + what + " " + printable(rel)
                + " (build it as ext4, or leave it out of the tree)");
    }

    /** Why FAT refuses {@code name} as a long name, or null. */
    private static String nameProblem(String name) {
        if (name.length() > MAX_NAME) return "longer than " + MAX_NAME + " characters";
        if (name.chars().anyMatch(c -> c < 0x20 || REFUSED_CHARACTERS.indexOf(c) >= 0)) {
            return "FAT names hold none of " + REFUSED_CHARACTERS + " nor control characters";
        }
        if (name.endsWith(".") || name.endsWith(" ")) return "FAT names do not end in a dot or a space";
        return null;
    }

    private static String printable(String s) {
        return s.replaceAll("\\p{Cntrl}", "?");
    }

    private static boolean hasTimesOutOfRange(Path tree) throws IOException {
        for (Path p : walk(tree)) {
            if (clamp(Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS)) != null) return true;
        }
        return false;
    }

    /** {@code t} brought into FAT's range, or null if it is in it. */
    private static FileTime clamp(FileTime t) {
        Instant i = t.toInstant();
        return i.isBefore(FIRST_TIME) ? FileTime.from(FIRST_TIME) : i.isAfter(LAST_TIME) ? FileTime.from(LAST_TIME) : null;
    }

    /** Every time in {@code tree} brought into FAT's range. */
    private static void clampTimes(Path tree) throws IOException {
        for (Path p : reversed(walk(tree))) {
            FileTime t = clamp(Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS));
            if (t != null) Files.setLastModifiedTime(p, t);
        }
    }

    /** A scratch copy of {@code tree} (regular files and directories only: {@link #check} refused the rest), times kept. */
    private static Path copyTree(Path tree) throws IOException {
        Path copy = Files.createTempDirectory(DecompressedCache.directory(), ".fat-tree-");
        List<Path> all = walk(tree);
        for (Path p : all) {
            Path to = copy.resolve(tree.relativize(p).toString());
            if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) Files.createDirectories(to);
            else Files.copy(p, to);
        }
        for (Path p : reversed(all)) {
            Files.setLastModifiedTime(copy.resolve(tree.relativize(p).toString()), Files.getLastModifiedTime(p));
        }
        return copy;
    }

    /** Children before their directories, so setting a child's time leaves its directory's alone. */
    private static List<Path> reversed(List<Path> parentsFirst) {
        List<Path> r = new ArrayList<>(parentsFirst);
        Collections.reverse(r);
        return r;
    }

    /** Every path in {@code tree}, itself first, parents before children. */
    private static List<Path> walk(Path tree) throws IOException {
        try (Stream<Path> s = Files.walk(tree)) {
            return s.sorted().toList();
        }
    }
}
