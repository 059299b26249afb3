package org.vdiskload.format.layout;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.vdiskload.image.error.ImageException;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A tar archive source (plain, or compressed and already decompressed by {@link DecompressedCache}): a root
 * file system such as {@code docker export} writes, built rootless into a file system image in the cache. The
 * archive is unpacked (commons-compress) into a scratch tree, with the archive's times. For ext4, {@code mke2fs -d}
 * builds the file system and {@code debugfs -w} then sets what an unprivileged unpack cannot: owners, modes
 * (setuid included), times, device nodes and fifos. For vfat, {@link FatFileSystem} builds it (and refuses the
 * device nodes and fifos FAT cannot hold). Entries that escape the tree ({@code ..}, through a symbolic link) are refused.
 */
final class TarFileSystem {
    private TarFileSystem() {}

    /** ustar magic ("ustar\0" POSIX, "ustar " GNU) at offset 257 of the first header. */
    static boolean isTar(byte[] head) {
        return head.length >= 263 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
    }

    /** @param archive the (decompressed) archive; {@code named} the file the layout names, for messages */
    static Path build(Path archive, Path named, String contentKey, FileSystemKind kind, long size, int sectorSize) throws IOException {
        Path dir = DecompressedCache.directory();
        String key = contentKey + "-" + kind.jsonName() + "-" + size + (kind == FileSystemKind.VFAT ? "-" + sectorSize : "");
        Path cached = dir.resolve(key + "." + kind.jsonName());
        if (Files.isRegularFile(cached) && Files.size(cached) == size) return cached;
        Files.createDirectories(dir);
        Path tree = Files.createTempDirectory(dir, ".tree-");
        Path tmp = Files.createTempFile(dir, ".partial-", "." + kind.jsonName());
        try {
            Unpacked u = unpack(archive, named, tree, size);
            switch (kind) {
                case EXT4 -> ext4(named, tree, tmp, size, key, u);
                case VFAT -> {
                    if (!u.specialNames.isEmpty()) {
                        throw ImageException.unsupported(named, "vfat cannot hold the device node or fifo " + u.specialNames.get(0)
                                + " (build it as ext4, or leave it out of the archive)");
                    }
                    FatFileSystem.build(named, tree, true, tmp, size, sectorSize, key);
                }
            }
            Files.move(tmp, cached, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return cached;
        } finally {
            Files.deleteIfExists(tmp);
            deleteTree(tree);
        }
    }

    private static void ext4(Path named, Path tree, Path out, long size, String key, Unpacked u) throws IOException {
        Path script = Files.createTempFile(DecompressedCache.directory(), ".debugfs-", ".txt");
        try {
            DirectoryFileSystem.mke2fs(named, tree, out, size, key, u.newest);
            Files.write(script, u.commands);
            String log = DirectoryFileSystem.run(named, List.of("debugfs", "-w", "-f", script.toString(), out.toString()),
                    DirectoryFileSystem.fakeTime(u.newest), "e2fsprogs", "debugfs failed");
            // debugfs exits 0 whatever its commands do; it echoes each as "debugfs: ..." and reports problems on other lines
            for (String line : log.lines().toList()) {
                if (!line.isBlank() && !line.startsWith("debugfs") && !line.startsWith("Allocated inode")) {
                    throw ImageException.invalid(named, "debugfs: " + line.trim());
                }
            }
        } finally {
            Files.deleteIfExists(script);
        }
    }

    private static final class Unpacked {
        final List<String> specials = new ArrayList<>();
        final List<String> attributes = new ArrayList<>();
        final List<String> commands = new ArrayList<>();
        /** Device nodes and fifos, as the archive names them: debugfs makes them, the scratch tree lacks them. */
        final List<String> specialNames = new ArrayList<>();
        /** Each unpacked directory's and file's time, set once everything is written (writing into a directory changes its time). */
        final List<Map.Entry<Path, Long>> times = new ArrayList<>();
        long newest;
    }

    private static Unpacked unpack(Path archive, Path tar, Path tree, long size) throws IOException {
        Unpacked u = new Unpacked();
        long total = 0;
        try (InputStream raw = new BufferedInputStream(Files.newInputStream(archive), 1 << 16);
             TarArchiveInputStream in = new TarArchiveInputStream(raw)) {
            for (TarArchiveEntry e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
                String name = clean(tar, e.getName());
                Path target = name.isEmpty() ? tree : tree.resolve(name);
                if (!name.isEmpty()) requireInside(tar, tree, target, e.getName());
                int type;
                if (e.isDirectory()) {
                    type = 0040000;
                    Files.createDirectories(target);
                } else if (e.isSymbolicLink()) {
                    type = 0120000;
                    Files.createSymbolicLink(fresh(tar, target, e), Path.of(e.getLinkName()));
                } else if (e.isLink()) {
                    Path to = tree.resolve(clean(tar, e.getLinkName()));
                    requireInside(tar, tree, to, e.getLinkName());
                    if (!Files.isRegularFile(to, LinkOption.NOFOLLOW_LINKS)) {
                        throw ImageException.unsupported(tar, "hard link " + e.getName() + " to " + e.getLinkName() + ", which is not a regular file before it");
                    }
                    Files.createLink(fresh(tar, target, e), to);
                    continue; // the same inode: its owner and mode come with its first name
                } else if (e.isCharacterDevice() || e.isBlockDevice() || e.isFIFO()) {
                    type = e.isFIFO() ? 0010000 : e.isCharacterDevice() ? 0020000 : 0060000;
                    fresh(tar, target, e);
                    u.specialNames.add(e.getName());
                    // debugfs's mknod makes its name in the current directory
                    int slash = name.lastIndexOf('/');
                    u.specials.add("cd " + quote(slash < 0 ? "" : name.substring(0, slash)));
                    u.specials.add("mknod \"" + name.substring(slash + 1) + "\"" + (e.isFIFO() ? " p" : (e.isCharacterDevice() ? " c " : " b ")
                            + e.getDevMajor() + " " + e.getDevMinor()));
                } else if (e.isFile()) {
                    type = 0100000;
                    total += e.getSize();
                    if (total > size) throw ImageException.invalid(tar, "holds more than the partition's " + size + " bytes");
                    Files.copy(in, fresh(tar, target, e));
                } else {
                    throw ImageException.unsupported(tar, "tar entry " + e.getName() + " has a type ('" + (char) e.getLinkFlag() + "') vdiskload cannot build");
                }
                String path = quote(name);
                long mtime = e.getModTime().getTime() / 1000;
                u.newest = Math.max(u.newest, mtime);
                if (type == 0040000 || type == 0100000) u.times.add(Map.entry(target, mtime));
                u.attributes.add("sif " + path + " uid " + e.getLongUserId());
                u.attributes.add("sif " + path + " gid " + e.getLongGroupId());
                u.attributes.add("sif " + path + " mode 0" + Integer.toOctalString(type | (e.getMode() & 07777)));
                u.attributes.add("sif " + path + " mtime " + mtime);
            }
        } catch (IllegalArgumentException e) {
            throw ImageException.corrupt(tar, ImageException.NO_OFFSET, null, "malformed tar archive: " + e.getMessage());
        }
        setTimes(tree, u);
        u.commands.addAll(u.specials);
        u.commands.add("cd \"/\"");
        u.commands.addAll(u.attributes);
        return u;
    }

    /** The archive's times on the scratch tree; directories the archive has no entry for take its newest time. */
    private static void setTimes(Path tree, Unpacked u) throws IOException {
        try (Stream<Path> s = Files.walk(tree)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) Files.setLastModifiedTime(p, FileTime.from(u.newest, TimeUnit.SECONDS));
            }
        }
        for (Map.Entry<Path, Long> t : u.times) Files.setLastModifiedTime(t.getKey(), FileTime.from(t.getValue(), TimeUnit.SECONDS));
    }

    /** The entry's path inside the file system: no leading "/" or "./", no "..", nothing debugfs cannot quote. */
    private static String clean(Path tar, String name) throws ImageException {
        List<String> parts = new ArrayList<>();
        for (String seg : name.split("/")) {
            if (seg.isEmpty() || seg.equals(".")) continue;
            if (seg.equals("..")) throw ImageException.invalid(tar, "tar entry " + name + " climbs out of the file system");
            parts.add(seg);
        }
        String n = String.join("/", parts);
        if (n.chars().anyMatch(c -> c == '"' || c == '\\' || c < 0x20)) {
            throw ImageException.unsupported(tar, "tar entry name '" + name.replaceAll("\\p{Cntrl}", "?") + "' has a character vdiskload cannot pass to debugfs");
        }
        return n;
    }

    /** Refuses a path whose parents inside the tree include a symbolic link (an entry written through it would escape). */
    private static void requireInside(Path tar, Path tree, Path target, String name) throws ImageException {
        for (Path p = target.getParent(); p != null && !p.equals(tree); p = p.getParent()) {
            if (Files.isSymbolicLink(p)) throw ImageException.invalid(tar, "tar entry " + name + " goes through the symbolic link " + tree.relativize(p));
        }
    }

    /** The target's parents made, the target itself not there yet (a second entry for one path is refused). */
    private static Path fresh(Path tar, Path target, TarArchiveEntry e) throws IOException {
        Files.createDirectories(target.getParent());
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) throw ImageException.unsupported(tar, "tar entry " + e.getName() + " appears twice");
        return target;
    }

    private static String quote(String name) {
        return "\"/" + name + "\"";
    }

    static void deleteTree(Path tree) throws IOException {
        if (!Files.exists(tree, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(tree)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
