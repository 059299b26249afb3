package org.vdiskload.cli;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.format.vhd.VhdFormat;
import org.vdiskload.format.vhdx.VhdxFormat;
import org.vdiskload.image.ImageFormat;
import org.vdiskload.ops.Create;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 19 through the commands: each kind of reference (an absolute name, {@code ../}, a symbolic link, a
 * device) of each format that has references — qcow2 and qcow backing files, VMDK extents and parent
 * hints, VHD and VHDX parent locators, layout sources — leading out of the image's directory is refused by
 * default in one line, with nothing written; followed with {@code --allow-refs} naming the directory it
 * leads to; refused with {@code --allow-refs} naming another. Devices stay refused whatever is allowed.
 * The same through serve here; attach in AttachRefsTest (FUSE) and vmtest/checks/refs-nbd.sh (nbd).
 */
class ReferenceRuleTest {
    private static final Duration LIMIT = Duration.ofMinutes(2);
    /** What the files outside hold: 64 KiB of it, a run of which any output reading them contains. */
    private static final byte SECRET = 0x5e;

    @TempDir
    Path root;

    enum Kind { ABSOLUTE, DOT_DOT, SYMLINK, DEVICE }

    /** A format's way of making an image in {@code images} that refers to a file in {@code outside}. */
    private interface Maker {
        Path make(Path images, Path outside, Kind kind) throws Exception;
    }

    private static CliRun vdiskload(String... args) {
        return CliRun.run(LIMIT, args);
    }

    private Path dir(String name) throws IOException {
        return Files.createDirectories(root.resolve(name));
    }

    /** outside/base.raw, and the same content as base.FORMAT for the formats whose parents must be their own. */
    private static Path base(Path outside, String format) throws Exception {
        Path raw = outside.resolve("base.raw");
        if (!Files.exists(raw)) {
            byte[] b = new byte[64 << 10];
            Arrays.fill(b, SECRET);
            Files.write(raw, b);
        }
        if (format.equals("raw")) return raw;
        Path p = outside.resolve("base." + format);
        if (!Files.exists(p)) Tools.check("qemu-img", "convert", "-q", "-f", "raw", "-O", format, raw.toString(), p.toString());
        return p;
    }

    /** How {@code kind} spells a reference from {@code images} to {@code target} (a link is made for SYMLINK). */
    private static String spell(Path images, Path target, Kind kind) throws IOException {
        return switch (kind) {
            case ABSOLUTE -> target.toString();
            case DOT_DOT -> "../" + target.getParent().getFileName() + "/" + target.getFileName();
            case SYMLINK -> {
                Path link = images.resolve("link-" + target.getFileName());
                if (!Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) Files.createSymbolicLink(link, target);
                yield link.getFileName().toString();
            }
            case DEVICE -> "/dev/zero";
        };
    }

    private static Maker qemuBacking(String format, String backingFormat) {
        return (images, outside, kind) -> {
            Path top = images.resolve("top." + format);
            String ref = spell(images, base(outside, backingFormat), kind);
            // -u: qemu-img does not open the backing file (a device, or a name relative to the image)
            Tools.check("qemu-img", "create", "-q", "-f", format, "-u", "-b", ref, "-F", backingFormat, top.toString(), "64K");
            return top;
        };
    }

    private static final Maker VMDK_EXTENT = (images, outside, kind) -> {
        Path top = images.resolve("top.vmdk");
        String ref = spell(images, base(outside, "raw"), kind);
        Files.writeString(top, "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n"
                + "RW 128 FLAT \"" + ref + "\" 0\n");
        return top;
    };

    private static final Maker VMDK_PARENT = (images, outside, kind) -> {
        Path top = images.resolve("top.vmdk");
        Path base = base(outside, "vmdk");
        // qemu-img reads the parent's CID (so no device) and resolves the name against the image's directory
        String ref = kind == Kind.DEVICE ? base.toString() : spell(images, base, kind);
        Tools.check("qemu-img", "create", "-q", "-f", "vmdk", "-b", ref, "-F", "vmdk", top.toString());
        if (kind == Kind.DEVICE) patch(top, base.toString(), "/dev/zero", '/', StandardCharsets.US_ASCII);
        return top;
    };

    /**
     * A differencing VHD or VHDX made by this library, whose relative and absolute locators lead to outside's
     * base. ABSOLUTE: made beside its parent and moved away, so that only the absolute locator leads to it.
     * DEVICE: that, with the absolute locator rewritten to name /dev/zero.
     */
    private static Maker differencing(ImageFormat format, String qemuName) {
        return (images, outside, kind) -> {
            Path base = base(outside, qemuName);
            String ext = base.getFileName().toString().substring("base.".length());
            Path top = images.resolve("top." + ext);
            if (kind == Kind.ABSOLUTE || kind == Kind.DEVICE) {
                Path made = outside.resolve("made." + ext);
                Create.create(made, format, -1, Map.of(), base.getFileName().toString(), qemuName);
                Files.move(made, top);
                if (kind == Kind.DEVICE) patch(top, base.toString().replace('/', '\\'), "\\dev\\zero", '\\', StandardCharsets.UTF_16LE);
            } else {
                Create.create(top, format, -1, Map.of(), spell(images, base, kind), qemuName);
            }
            return top;
        };
    }

    /**
     * Overwrites the text {@code from} in {@code file} with the path {@code to} and as many {@code separator}s as
     * it was longer (a path ignores repeated separators).
     */
    private static void patch(Path file, String from, String to, char separator, Charset charset) throws IOException {
        byte[] all = Files.readAllBytes(file);
        byte[] want = from.getBytes(charset);
        byte[] put = (to + String.valueOf(separator).repeat(from.length() - to.length())).getBytes(charset);
        for (int at = 0; at + want.length <= all.length; at++) {
            if (Arrays.equals(all, at, at + want.length, want, 0, want.length)) {
                System.arraycopy(put, 0, all, at, put.length);
                Files.write(file, all);
                return;
            }
        }
        throw new AssertionError(from + " not in " + file);
    }

    private static final Maker LAYOUT = (images, outside, kind) -> {
        Path top = images.resolve("disk.json");
        String ref = spell(images, base(outside, "raw"), kind);
        Files.writeString(top, "{ \"vdiskload-layout\": 1, \"table\": \"gpt\",\n  \"partitions\": [ { \"source\": \"" + ref + "\" } ] }\n");
        return top;
    };

    private static final Map<String, Maker> FORMATS = Map.of(
            "qcow2 backing file", qemuBacking("qcow2", "raw"),
            "qcow backing file", qemuBacking("qcow", "raw"),
            "vmdk extent", VMDK_EXTENT,
            "vmdk parent", VMDK_PARENT,
            "vhd parent locators", differencing(new VhdFormat(), "vpc"),
            "vhdx parent locators", differencing(new VhdxFormat(), "vhdx"),
            "layout source", LAYOUT);

    @TestFactory
    Stream<DynamicTest> eachKindOfReferenceOfEachFormat() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Map.Entry<String, Maker> f : FORMATS.entrySet()) {
            for (Kind kind : Kind.values()) {
                tests.add(DynamicTest.dynamicTest(f.getKey() + ", " + kind, () -> {
                    Path at = Files.createDirectories(root.resolve(f.getKey().replace(' ', '-') + "-" + kind));
                    Path images = Files.createDirectories(at.resolve("images"));
                    Path outside = Files.createDirectories(at.resolve("outside"));
                    Path other = Files.createDirectories(at.resolve("other"));
                    Path top = f.getValue().make(images, outside, kind);
                    if (kind == Kind.DEVICE) assertDeviceRefused(top, images);
                    else assertRuleApplies(top, images, outside.toRealPath(), other);
                }));
            }
        }
        return tests.stream();
    }

    /** Refused by default (one line, no output), followed with outside allowed, refused with another directory allowed. */
    private static void assertRuleApplies(Path top, Path images, Path outside, Path other) throws IOException {
        Path out = images.resolve("out.raw");
        CliRun r = vdiskload("convert", "-O", "raw", top.toString(), out.toString());
        assertRefusal(r, top, outside);
        assertFalse(Files.exists(out), "nothing written: " + r);
        r = vdiskload("convert", "--allow-refs", other.toString(), "-O", "raw", top.toString(), out.toString());
        assertRefusal(r, top, outside);
        assertFalse(Files.exists(out), "nothing written: " + r);
        r = vdiskload("convert", "--allow-refs", other.toString(), "--allow-refs", outside.toString(), "-O", "raw", top.toString(), out.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(holdsTheSecret(Files.readAllBytes(out)), "the output holds what the reference leads to");
    }

    /** The one line: the image, the reference, where it resolves to (inside outside), the flag that allows it. */
    private static void assertRefusal(CliRun r, Path top, Path outside) {
        assertRefusal(r, top, outside, Errors.EXIT_ERROR);
    }

    private static void assertRefusal(CliRun r, Path top, Path outside, int exit) {
        assertEquals(exit, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: " + top + ": "), r.err());
        assertTrue(r.err().contains("\" resolves to " + outside + "/"), r.err());
        assertTrue(r.err().contains("allow it with --allow-refs " + outside + " (or VDISKLOAD_ALLOW_REFS)"), r.err());
    }

    private static void assertDeviceRefused(Path top, Path images) {
        Path out = images.resolve("out.raw");
        for (List<String> allow : List.of(List.<String>of(), List.of("--allow-refs", "/dev"), List.of("--allow-refs", "/"))) {
            List<String> args = new ArrayList<>(List.of("convert", "-O", "raw"));
            args.addAll(allow);
            args.addAll(List.of(top.toString(), out.toString()));
            CliRun r = vdiskload(args.toArray(String[]::new));
            assertEquals(1, r.exit(), r.toString());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().startsWith("vdiskload: " + top + ": ") && r.err().contains("is not a regular file"), r.err());
            assertFalse(Files.exists(out), "nothing written: " + r);
        }
    }

    private static boolean holdsTheSecret(byte[] b) {
        int run = 0;
        for (byte x : b) {
            run = x == SECRET ? run + 1 : 0;
            if (run == 4096) return true;
        }
        return false;
    }

    @Test
    void sameDirectoryChainsAndSubdirectoryBasesNeedNoFlag() throws Exception {
        Path images = dir("images");
        Path bases = dir("images/bases");
        base(bases, "raw");
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", "bases/base.raw", "-F", "raw",
                images.resolve("sub.qcow2").toString());
        Tools.check("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", bases.resolve("base.raw").toString(),
                images.resolve("base.qcow2").toString());
        // qemu-img create -b base.qcow2 in one directory; a libvirt-style absolute name of a base beside it
        Tools.run(List.of("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "rel.qcow2"), images);
        Tools.check("qemu-img", "create", "-q", "-f", "qcow2", "-b", images.resolve("base.qcow2").toString(), "-F", "qcow2",
                images.resolve("abs.qcow2").toString());
        for (String top : List.of("sub.qcow2", "rel.qcow2", "abs.qcow2")) {
            Path out = images.resolve(top + ".raw");
            CliRun r = vdiskload("convert", "-O", "raw", images.resolve(top).toString(), out.toString());
            assertEquals(0, r.exit(), top + ": " + r);
            assertTrue(holdsTheSecret(Files.readAllBytes(out)), top);
            CliRun info = vdiskload("info", "--backing-chain", images.resolve(top).toString());
            assertEquals(0, info.exit(), top + ": " + info);
            assertFalse(info.out().contains("refused"), info.out());
        }
    }

    @Test
    void infoMarksARefusedBackingFileWithoutOpeningItAndBackingChainAppliesTheRule() throws Exception {
        Path images = dir("images");
        Path outside = dir("outside");
        Path top = qemuBacking("qcow2", "raw").make(images, outside, Kind.DOT_DOT);
        Path secret = outside.resolve("base.raw").toRealPath();
        CliRun r = vdiskload("info", top.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("backing file: ../outside/base.raw (actual path: " + outside.resolve("base.raw") + ")\n"), r.out());
        assertTrue(r.out().contains("backing file refused: resolves to " + secret + ", outside the image's directory "
                + images.toRealPath() + "; allow it with --allow-refs " + outside.toRealPath()), r.out());
        r = vdiskload("info", "--output=json", top.toString());
        assertTrue(r.out().contains("\"backing-filename-refused\" : \"resolves to " + secret), r.out());
        r = vdiskload("info", "--allow-refs", outside.toString(), top.toString());
        assertFalse(r.out().contains("refused"), r.out());

        r = vdiskload("info", "--backing-chain", top.toString());
        assertRefusal(r, top, outside.toRealPath());
        r = vdiskload("info", "--backing-chain", "--allow-refs", outside.toString(), top.toString());
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("image: " + outside.resolve("base.raw")), r.out());

        // a device is marked too, whatever is allowed
        Path dev = qemuBacking("qcow2", "raw").make(dir("dev"), outside, Kind.DEVICE);
        r = vdiskload("info", "--allow-refs", "/dev", dev.toString());
        assertTrue(r.out().contains("backing file refused: is not a regular file"), r.out());
    }

    @Test
    void createWarnsWhenTheBackingFileLiesOutsideTheNewImagesDirectory() throws Exception {
        Path images = dir("images");
        Path outside = dir("outside");
        base(outside, "qcow2");
        base(images, "qcow2");
        Path top = images.resolve("top.qcow2");
        CliRun r = vdiskload("create", "-f", "qcow2", "-b", "../outside/base.qcow2", "-F", "qcow2", top.toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("vdiskload: warning: " + top + ": opening it will need its backing file allowed: backing file"
                + " \"../outside/base.qcow2\" resolves to " + outside.toRealPath().resolve("base.qcow2")), r.err());
        assertTrue(r.err().contains("--allow-refs " + outside.toRealPath()), r.err());
        r = vdiskload("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", images.resolve("beside.qcow2").toString());
        assertEquals(0, r.exit(), r.toString());
        assertEquals("", r.err());
    }

    /**
     * serve: refused in one line (no socket); served with --allow-refs (in this JVM) or VDISKLOAD_ALLOW_REFS (in a
     * child JVM, the variable in its environment) naming the directory.
     */
    @Test
    void serveFollowsOnlyAllowedReferences() throws Exception {
        Path images = dir("images");
        Path outside = dir("outside");
        Path top = qemuBacking("qcow2", "raw").make(images, outside, Kind.DOT_DOT);
        Path sock = images.resolve("s.sock");
        assertRefusal(vdiskload("serve", "-r", "-k", sock.toString(), top.toString()), top, outside.toRealPath());
        assertFalse(Files.exists(sock));

        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CompletableFuture<Integer> serve = CompletableFuture.supplyAsync(() -> Main.run(new PrintWriter(out), new PrintWriter(err),
                "serve", "-r", "-k", sock.toString(), "--allow-refs", outside.toString(), top.toString()));
        assertServed(sock, out::toString, images.resolve("served.raw"));
        assertEquals(0, serve.get(60, TimeUnit.SECONDS), err.toString());

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Path log = images.resolve("serve.log");
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "serve", "-r", "-k", sock.toString(), top.toString()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("VDISKLOAD_ALLOW_REFS", dir("other") + ":" + outside);
        Process p = pb.start();
        try {
            assertServed(sock, () -> read(log), images.resolve("served-env.raw"));
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "exits when its client leaves");
            assertEquals(0, p.exitValue(), read(log));
        } finally {
            p.destroyForcibly();
        }
    }

    /** Waits for the server on {@code sock} to print its URI, copies its export, and checks it holds the secret. */
    private static void assertServed(Path sock, Supplier<String> output, Path copy) throws Exception {
        for (int i = 0; i < 400 && !output.get().contains("?socket=" + sock); i++) Thread.sleep(25);
        assertTrue(output.get().contains("?socket=" + sock), output.get());
        Tools.check("qemu-img", "convert", "-f", "raw", "-O", "raw", "nbd+unix:///top.qcow2?socket=" + sock, copy.toString());
        assertTrue(holdsTheSecret(Files.readAllBytes(copy)), "the export reads the backing file");
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "";
        }
    }

    /** Every command that opens an image takes --allow-refs and applies the rule (a VMDK whose extent lies outside). */
    @Test
    void everyCommandThatOpensAnImageAppliesTheRule() throws Exception {
        Path images = dir("images");
        Path outside = dir("outside");
        Path top = VMDK_EXTENT.make(images, outside, Kind.ABSOLUTE);
        Path real = outside.toRealPath();
        Path copy = images.resolve("copy.raw");
        Files.copy(outside.resolve("base.raw"), copy);
        String allow = outside.toString();
        List<List<String>> commands = List.of(
                List.of("info", top.toString()),
                List.of("map", top.toString()),
                List.of("check", top.toString()),
                List.of("compare", top.toString(), copy.toString()),
                List.of("compare", copy.toString(), top.toString()),
                List.of("convert", "-O", "qcow2", top.toString(), images.resolve("c.qcow2").toString()));
        for (List<String> c : commands) {
            int exit = c.get(0).equals("compare") ? CompareCommand.EXIT_ERROR : Errors.EXIT_ERROR;
            assertRefusal(vdiskload(c.toArray(String[]::new)), top, real, exit);
            List<String> allowed = new ArrayList<>(c.subList(0, 1));
            allowed.addAll(List.of("--allow-refs", allow));
            allowed.addAll(c.subList(1, c.size()));
            CliRun r = vdiskload(allowed.toArray(String[]::new));
            assertEquals(0, r.exit(), allowed + ": " + r);
        }
        // resize opens the image to write it: refused first (VMDK cannot be resized anyway)
        assertRefusal(vdiskload("resize", top.toString(), "128K"), top, real);
        CliRun r = vdiskload("resize", "--allow-refs", allow, top.toString(), "128K");
        assertFalse(r.err().contains("resolves to"), r.toString());
    }

    /** convert -n writes into an existing image: its extents are judged too, and a refused one is left alone. */
    @Test
    void convertIntoAnImageWhoseExtentLiesOutsideWritesNothing() throws Exception {
        Path images = dir("images");
        Path outside = dir("outside");
        Path target = VMDK_EXTENT.make(images, outside, Kind.DOT_DOT);
        Path src = Files.write(images.resolve("zeros.raw"), new byte[64 << 10]);
        byte[] before = Files.readAllBytes(outside.resolve("base.raw"));
        CliRun r = vdiskload("convert", "-n", "-O", "vmdk", src.toString(), target.toString());
        assertRefusal(r, target, outside.toRealPath());
        assertTrue(Arrays.equals(before, Files.readAllBytes(outside.resolve("base.raw"))), "the file outside is unchanged");
        r = vdiskload("convert", "-n", "--allow-refs", outside.toString(), "-O", "vmdk", src.toString(), target.toString());
        assertEquals(0, r.exit(), r.toString());
        assertFalse(holdsTheSecret(Files.readAllBytes(outside.resolve("base.raw"))), "written once allowed");
    }

    @Test
    void theEnvironmentVariableAddsDirectories() throws Exception {
        Path a = dir("a");
        Path b = dir("b");
        AllowRefs flags = new AllowRefs();
        flags.directories.add(a);
        assertEquals(List.of(a.toRealPath(), b.toRealPath()), flags.policy(b + "::" + a + ":").allowed());
        assertEquals(List.of(a.toRealPath()), flags.policy(null).allowed());
        assertEquals(List.of(), new AllowRefs().policy("").allowed());
        String missing = root.resolve("missing").toString();
        org.vdiskload.image.error.ImageException e = org.junit.jupiter.api.Assertions.assertThrows(
                org.vdiskload.image.error.ImageException.class, () -> new AllowRefs().policy(missing));
        assertTrue(e.getMessage().startsWith(missing + ": no such directory to allow references into"), e.getMessage());
    }

    @Test
    void aMissingAllowedDirectoryIsOneLine() throws Exception {
        Path images = dir("images");
        Path top = qemuBacking("qcow2", "raw").make(images, dir("outside"), Kind.ABSOLUTE);
        CliRun r = vdiskload("info", "--allow-refs", root.resolve("nope").toString(), top.toString());
        assertEquals(1, r.exit(), r.toString());
        assertEquals("vdiskload: " + root.resolve("nope") + ": no such directory to allow references into (--allow-refs,"
                + " VDISKLOAD_ALLOW_REFS)\n", r.err());
    }
}
