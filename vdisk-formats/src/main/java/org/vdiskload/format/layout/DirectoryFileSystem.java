package org.vdiskload.format.layout;

import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A directory source, built into a file system image in the decompression cache without root or a mount: ext4
 * with {@code mke2fs -d} (e2fsprogs), or vfat with {@link FatFileSystem}. The cache key covers the file system,
 * its size (and sector size for vfat) and every entry's path, type, mode, owner, size, mtime and link target, so
 * an unchanged tree is built once; the file system's UUID (volume ID), hash seed and times derive from that key
 * and the tree, so the same tree builds the same bytes.
 */
final class DirectoryFileSystem {
    private DirectoryFileSystem() {}

    private static final long BUILD_MINUTES = 30;

    static Path build(Path tree, FileSystemKind kind, long size, int sectorSize) throws IOException {
        Path dir = DecompressedCache.directory();
        String key = key(tree, kind == FileSystemKind.EXT4 ? "ext4 " + size : "vfat " + size + " " + sectorSize);
        Path cached = dir.resolve(key + "." + kind.jsonName());
        if (Files.isRegularFile(cached) && Files.size(cached) == size) return cached;
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, ".partial-", "." + kind.jsonName());
        try {
            switch (kind) {
                case EXT4 -> mke2fs(tree, tree, tmp, size, key, newestMtime(tree));
                case VFAT -> FatFileSystem.build(tree, tree, false, tmp, size, sectorSize, key);
            }
            Files.move(tmp, cached, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return cached;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Builds {@code out}, an ext4 file system of {@code size} bytes holding {@code tree}; UUID and hash seed from {@code key}. */
    static void mke2fs(Path subject, Path tree, Path out, long size, String key, long time) throws IOException {
        UUID id = UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.US_ASCII));
        run(subject, List.of("mke2fs", "-q", "-F", "-t", "ext4", "-d", tree.toString(), "-U", id.toString(), "-E", "hash_seed=" + id,
                out.toString(), (size / 1024) + "k"), fakeTime(time), "e2fsprogs", "mke2fs -d failed (is the partition size large enough?)");
    }

    /** The environment that makes e2fsprogs stamp {@code time} instead of the clock. */
    static Map<String, String> fakeTime(long time) {
        return Map.of("E2FSPROGS_FAKE_TIME", Long.toString(time));
    }

    /**
     * Runs a file system tool from {@code pkg} (bounded in time, {@code env} added to its environment), turning
     * a failure into one line about {@code subject}; returns what it printed.
     */
    static String run(Path subject, List<String> cmd, Map<String, String> env, String pkg, String failure) throws IOException {
        Path log = Files.createTempFile(DecompressedCache.directory(), ".fs-", ".log");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            pb.redirectErrorStream(true).redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                throw ImageException.unsupported(subject, "building a file system needs " + cmd.get(0) + " (" + pkg + "): " + e.getMessage());
            }
            boolean done;
            try {
                done = p.waitFor(BUILD_MINUTES, TimeUnit.MINUTES);
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while building a file system from " + subject);
            }
            if (!done) {
                p.destroyForcibly();
                throw ImageException.invalid(subject, cmd.get(0) + " did not finish in " + BUILD_MINUTES + " minutes");
            }
            if (p.exitValue() != 0) {
                throw ImageException.invalid(subject, failure + ": " + String.join(" ", Files.readAllLines(log)).trim());
            }
            return Files.readString(log);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** @param kindAndSize the file system and what shapes its bytes besides the tree */
    private static String key(Path tree, String kindAndSize) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        md.update((kindAndSize + "\n").getBytes(StandardCharsets.UTF_8));
        List<Path> entries;
        try (Stream<Path> s = Files.walk(tree)) {
            entries = s.sorted().toList();
        }
        for (Path p : entries) {
            PosixFileAttributes a = Files.readAttributes(p, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            Object uid = Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
            Object gid = Files.getAttribute(p, "unix:gid", LinkOption.NOFOLLOW_LINKS);
            Object mode = Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
            String link = a.isSymbolicLink() ? Files.readSymbolicLink(p).toString() : "";
            md.update((tree.relativize(p) + "\0" + mode + " " + uid + " " + gid + " " + a.size() + " "
                    + a.lastModifiedTime().toInstant() + " " + link + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static long newestMtime(Path tree) throws IOException {
        try (Stream<Path> s = Files.walk(tree)) {
            long newest = 0;
            for (Path p : (Iterable<Path>) s::iterator) {
                newest = Math.max(newest, Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toInstant().getEpochSecond());
            }
            return newest;
        }
    }
}
