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
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A directory source, built into an ext4 image with {@code mke2fs -d} (e2fsprogs; no root, no mount) in the
 * decompression cache. The cache key covers the size and every entry's path, type, mode, owner, size, mtime
 * and link target, so an unchanged tree is built once; the file system's UUID, hash seed and times derive from
 * that key, so the same tree builds the same bytes.
 */
final class DirectoryFileSystem {
    private DirectoryFileSystem() {}

    private static final long BUILD_MINUTES = 30;

    static Path ext4(Path tree, long size) throws IOException {
        Path dir = DecompressedCache.directory();
        String key = key(tree, size);
        Path cached = dir.resolve(key + ".ext4");
        if (Files.isRegularFile(cached) && Files.size(cached) == size) return cached;
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, ".partial-", ".ext4");
        try {
            mke2fs(tree, tree, tmp, size, key, newestMtime(tree));
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
                out.toString(), (size / 1024) + "k"), time, "mke2fs -d failed (is the partition size large enough?)");
    }

    /** Runs an e2fsprogs tool (bounded in time), turning a failure into one line about {@code subject}. */
    static String run(Path subject, List<String> cmd, long fakeTime, String failure) throws IOException {
        Path log = Files.createTempFile(DecompressedCache.directory(), ".e2fs-", ".log");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().put("E2FSPROGS_FAKE_TIME", Long.toString(fakeTime));
            pb.redirectErrorStream(true).redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                throw ImageException.unsupported(subject, "building an ext4 file system needs " + cmd.get(0) + " (e2fsprogs): " + e.getMessage());
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

    private static String key(Path tree, long size) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        md.update(("ext4 " + size + "\n").getBytes(StandardCharsets.UTF_8));
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

    private static long newestMtime(Path tree) throws IOException {
        try (Stream<Path> s = Files.walk(tree)) {
            long newest = 0;
            for (Path p : (Iterable<Path>) s::iterator) {
                newest = Math.max(newest, Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toInstant().getEpochSecond());
            }
            return newest;
        }
    }
}
