package org.vdiskload.attach;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.Isolated;
import org.vdiskload.cli.CliRun;
import org.vdiskload.testing.Tools;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code vdiskload tar} against the layouts' tar source, the other way round: a tree → a tar → a layout's
 * ext4 partition → a baked qcow2 → {@code vdiskload tar} → extracted (as root) → the same tree. And xattrs
 * and POSIX ACLs of an ext4 (which mke2fs -d copies from a tree; the layouts' tar unpack keeps none).
 * Isolated: it attaches.
 */
@Isolated
class TarRoundTripTest {
    private static final Duration LIMIT = Duration.ofMinutes(3);
    private static final LinkOption[] NOFOLLOW = {LinkOption.NOFOLLOW_LINKS};

    @TempDir
    Path dir;

    @AfterEach
    void cleanUp() {
        assertEquals("", vdiskload("-l").out(), "tar left an attachment");
    }

    static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    /** Owners, modes (setuid too), times, a symlink with its own owner and time, a hard link, a device node and a fifo. */
    private static final String TREE = """
            set -e
            t=$1
            mkdir -p "$t/d/sub" "$t/empty dir"
            echo hello > "$t/a.txt"; chmod 0640 "$t/a.txt"; chown 1234:5678 "$t/a.txt"
            printf 'bin\\0ary' > "$t/d/b.bin"; chmod 4755 "$t/d/b.bin"
            head -c 300000 /dev/urandom > "$t/d/big"
            ln "$t/a.txt" "$t/d/hard.txt"
            ln -s ../a.txt "$t/d/link"; chown -h 42:43 "$t/d/link"
            mknod "$t/d/null" c 1 3; mkfifo "$t/d/fifo"
            chmod 0700 "$t/d/sub"; chown 7:8 "$t/d/sub"; chmod 1777 "$t/empty dir"
            for f in "$t/a.txt" "$t/d/b.bin" "$t/d/big" "$t/d/null" "$t/d/fifo" "$t/d/sub" "$t/empty dir" "$t/d"; do touch -d @1600000000 "$f"; done
            touch -h -d @1500000000 "$t/d/link"
            """;

    @Test
    void aTreeThroughALayoutsExt4AndBackIsTheSameTree() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("tree"));
        Tools.check("sh", "-c", TREE, "sh", tree.toString());
        Tools.check("tar", "--numeric-owner", "--format=posix", "-C", tree.toString(), "-cf", dir.resolve("src.tar").toString(), ".");
        Files.writeString(dir.resolve("disk.json"), """
                { "vdiskload-layout": 1, "table": "gpt",
                  "partitions": [ { "source": "src.tar", "type": "linux", "name": "root", "size": "32M" } ] }""");
        Path baked = dir.resolve("baked.qcow2");
        CliRun c = vdiskload("convert", "-O", "qcow2", dir.resolve("disk.json").toString(), baked.toString());
        assertEquals(0, c.exit(), c.toString());

        Path out = dir.resolve("out.tar");
        CliRun t = vdiskload("tar", "-f", out.toString(), baked.toString());
        assertEquals(0, t.exit(), t.toString());
        Path back = Files.createDirectories(dir.resolve("back"));
        Tools.check("tar", "--numeric-owner", "-xpf", out.toString(), "-C", back.toString());
        Files.delete(back.resolve("lost+found")); // mke2fs's own

        Map<String, String> expected = describe(tree);
        assertEquals(expected, describe(back));
        assertTrue(expected.get("d/null").contains("rdev=259"), "the device node is compared: " + expected.get("d/null"));
        Object inode = Files.getAttribute(back.resolve("a.txt"), "unix:ino", NOFOLLOW);
        assertEquals(inode, Files.getAttribute(back.resolve("d/hard.txt"), "unix:ino", NOFOLLOW), "the hard link is one file");
    }

    @Test
    void xattrsAndAclsOfAnExt4() throws Exception {
        Path tree = Files.createDirectories(dir.resolve("xtree"));
        Path f = Files.writeString(tree.resolve("f"), "with attributes\n");
        UserDefinedFileAttributeView user = Files.getFileAttributeView(f, UserDefinedFileAttributeView.class);
        user.write("note", ByteBuffer.wrap("kept".getBytes()));
        byte[] acl = acl();
        Tools.check("python3", "-c", "import os, sys; os.setxattr(sys.argv[1], 'system.posix_acl_access', bytes.fromhex(sys.argv[2]))",
                f.toString(), java.util.HexFormat.of().formatHex(acl));
        Path fs = dir.resolve("x.ext4");
        Tools.check("mke2fs", "-q", "-t", "ext4", "-d", tree.toString(), fs.toString(), "16M");

        Path out = dir.resolve("x.tar");
        CliRun t = vdiskload("tar", "-r", "-f", out.toString(), fs.toString());
        assertEquals(0, t.exit(), t.toString());
        Path back = Files.createDirectories(dir.resolve("xback"));
        Tools.check("tar", "--xattrs", "--xattrs-include=user.*", "--acls", "-xpf", out.toString(), "-C", back.toString());
        UserDefinedFileAttributeView restored = Files.getFileAttributeView(back.resolve("f"), UserDefinedFileAttributeView.class);
        ByteBuffer note = ByteBuffer.allocate(16);
        restored.read("note", note);
        assertEquals("kept", new String(note.array(), 0, note.position()));
        String got = Tools.check("python3", "-c", "import os, sys; print(os.getxattr(sys.argv[1], 'system.posix_acl_access').hex())",
                back.resolve("f").toString()).strip();
        assertArrayEquals(acl, java.util.HexFormat.of().parseHex(got), "the POSIX ACL");
    }

    /** An access ACL in the kernel's xattr form: user::rw-, user:1000:r--, group::r--, mask::r--, other::---. */
    private static byte[] acl() {
        int[][] entries = {{0x01, 6, -1}, {0x02, 4, 1000}, {0x04, 4, -1}, {0x10, 4, -1}, {0x20, 0, -1}};
        ByteBuffer b = ByteBuffer.allocate(4 + 8 * entries.length).order(ByteOrder.LITTLE_ENDIAN).putInt(2);
        for (int[] e : entries) b.putShort((short) e[0]).putShort((short) e[1]).putInt(e[2]);
        return b.array();
    }

    /** Every entry below {@code root} (not root itself): type, mode, owner, mtime in seconds, and its link target, device or content's hash. */
    private static Map<String, String> describe(Path root) throws Exception {
        Map<String, String> all = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.filter(x -> !x.equals(root)).toList()) {
                Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,lastModifiedTime,rdev", NOFOLLOW);
                StringBuilder d = new StringBuilder(String.format("mode=%o uid=%s gid=%s mtime=%d", a.get("mode"), a.get("uid"), a.get("gid"),
                        ((java.nio.file.attribute.FileTime) a.get("lastModifiedTime")).toMillis() / 1000));
                if (Files.isSymbolicLink(p)) d.append(" -> ").append(Files.readSymbolicLink(p));
                else if (Files.isRegularFile(p, NOFOLLOW)) d.append(" sha256=").append(java.util.HexFormat.of().formatHex(
                        java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p))));
                else if (!Files.isDirectory(p, NOFOLLOW)) d.append(" rdev=").append(a.get("rdev"));
                all.put(root.relativize(p).toString(), d.toString());
            }
        }
        return all;
    }
}
