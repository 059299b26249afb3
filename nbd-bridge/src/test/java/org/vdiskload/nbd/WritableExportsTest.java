package org.vdiskload.nbd;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.testing.QemuOracle;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Real clients writing through read-write exports of every testdata image whose format vdiskload can
 * write: qemu-io (write -P, write -z, discard, flush, FUA) checked against a byte model, nbdcopy into
 * the export, two writers at once. The image is then checked by qemu itself (qemu-img compare against
 * the model, qemu-img check where the format has checks).
 */
class WritableExportsTest {
    /**
     * The formats vdiskload writes. A format whose writer lands joins every test here by being added;
     * until then its images must refuse to open writable (so this list cannot silently fall behind).
     */
    static final Set<String> WRITABLE = Set.of("raw", "qcow", "qcow2", "vdi", "vpc", "vmdk", "vhdx");

    /**
     * Images that open writable but only append (a streamOptimized VMDK takes writes into grains never
     * written, in order, as qemu does): not for random writes.
     */
    static final Set<String> APPEND_ONLY = Set.of("vmdk-stream.vmdk");

    @TempDir
    Path dir;

    /** A fresh copy of every script's images (the tests change them), in its own directory. */
    private List<TestImages.Served> images(String purpose) throws Exception {
        List<TestImages.Served> out = new ArrayList<>();
        for (String script : TestImages.SCRIPTS) {
            Path sub = Files.createDirectories(dir.resolve(purpose).resolve(script.replace(".sh", "")));
            Path expected = Files.createDirectories(dir.resolve(purpose).resolve("expected"));
            for (Tools.GeneratedImage img : Tools.generate(script, sub)) {
                Path raw = expected.resolve(script + "-" + img.path().getFileName() + ".raw");
                List<String> cmd = List.of("qemu-img", "convert", "-f", img.format(), "-O", "raw", img.path().toString(), raw.toString());
                Tools.run(cmd, null).requireSuccess(cmd);
                out.add(new TestImages.Served(img.path().getFileName().toString(), img, raw));
            }
        }
        return out;
    }

    private static List<TestImages.Served> writable(List<TestImages.Served> all) {
        return all.stream().filter(s -> WRITABLE.contains(s.image().format()) && !APPEND_ONLY.contains(s.name())).toList();
    }

    @TestFactory
    Stream<DynamicTest> everyImageIsWritableExactlyWhenItsFormatIsListed() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        List<TestImages.Served> all = images("writability");
        assertFalse(writable(all).isEmpty(), "the write tests below have images to run on");
        for (TestImages.Served s : all) {
            tests.add(DynamicTest.dynamicTest(s.name() + " (" + s.image().format() + ")", () -> {
                boolean listed = WRITABLE.contains(s.image().format());
                try (DiskImage d = Images.open(s.image().path(), QemuOracle.options(s.image()).withWritable(true))) {
                    assertEquals(listed, d.isWritable(), s.image().format() + (listed
                            ? " is listed in WRITABLE but its images open read-only"
                            : " images now open writable: add the format to WritableExportsTest.WRITABLE"));
                } catch (ImageException e) {
                    if (listed || e.kind() != ImageException.Kind.UNSUPPORTED) throw e;
                }
            }));
        }
        return tests.stream();
    }

    /** qemu-io commands and the model change each makes, scaled to the image's size. */
    private record Op(String command, int offset, int length, int fill) {}

    private static List<Op> ops(long size, long seed) {
        Random r = new Random(seed);
        List<Op> out = new ArrayList<>();
        int unit = size >= 1 << 20 ? 65536 : 512; // discards aligned: clients may drop unaligned parts of a trim
        for (int i = 0; i < 24; i++) {
            int len = 1 + r.nextInt((int) Math.min(size, 3L * unit));
            int off = r.nextInt((int) (size - len + 1));
            int kind = r.nextInt(5);
            int pattern = 1 + r.nextInt(254);
            switch (kind) {
                case 0 -> out.add(new Op("write -P " + pattern + " " + off + " " + len, off, len, pattern));
                case 1 -> out.add(new Op("write -f -P " + pattern + " " + off + " " + len, off, len, pattern)); // FUA
                case 2 -> out.add(new Op("write -z " + off + " " + len, off, len, 0)); // NO_HOLE
                case 3 -> out.add(new Op("write -z -u " + off + " " + len, off, len, 0)); // may unmap
                default -> {
                    int aoff = (int) (r.nextInt((int) (size / unit)) * (long) unit);
                    int alen = (int) Math.min(size - aoff, (1 + r.nextInt(2)) * (long) unit);
                    out.add(new Op("discard " + aoff + " " + alen, aoff, alen, 0));
                }
            }
        }
        out.add(new Op("flush", 0, 0, -1));
        return out;
    }

    private static void apply(byte[] model, List<Op> ops) {
        for (Op o : ops) if (o.fill >= 0) Arrays.fill(model, o.offset, o.offset + o.length, (byte) o.fill);
    }

    private static void qemuIo(String uri, List<Op> ops) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        for (Op o : ops) cmd.addAll(List.of("-c", o.command));
        cmd.add(uri);
        Tools.Result r = Tools.run(cmd, null).requireSuccess(cmd);
        assertFalse((r.stdout() + r.stderr()).contains("error") || r.stdout().contains("failed"), r.stdout() + r.stderr());
    }

    /** The image, after the server let go of it, against the model: by qemu (compare, check) and through the library. */
    private static void assertImageIs(TestImages.Served s, byte[] model, Path scratch) throws Exception {
        Path m = Files.write(scratch.resolve(s.name() + ".model"), model);
        Tools.Result r = Tools.run(List.of("qemu-img", "compare", "-f", "raw", "-F", s.image().format(), m.toString(),
                s.image().path().toString()), null);
        if (r.exit() != 0) fail(s.name() + ": qemu-img compare with the model: " + r.stdout() + r.stderr());
        Tools.Result check = Tools.run(List.of("qemu-img", "check", "-f", s.image().format(), s.image().path().toString()), null);
        // 63: qemu has no checks for the format (raw, qcow, vpc)
        assertTrue(check.exit() == 0 || check.exit() == 63, s.name() + ": qemu-img check: " + check.stdout() + check.stderr());
    }

    @TestFactory
    Stream<DynamicTest> qemuIoWritesThroughTheExport() throws Exception {
        List<TestImages.Served> served = writable(images("qemu-io"));
        List<DynamicTest> tests = new ArrayList<>();
        for (TestImages.Served s : served) {
            tests.add(DynamicTest.dynamicTest(s.name(), () -> {
                byte[] model = Files.readAllBytes(s.expected());
                List<Op> ops = ops(model.length, s.name().hashCode());
                try (var server = TestImages.serveWritable(List.of(s), dir.resolve("w.sock"), NbdServer.Options.defaults())) {
                    qemuIo(server.uri(s.name()), ops);
                    apply(model, ops);
                    // qemu-io read -P verifies the last pattern written, through the export
                    Op last = ops.stream().filter(o -> o.fill > 0).reduce((a, b) -> b).orElseThrow();
                    byte[] expect = new byte[last.length];
                    Arrays.fill(expect, (byte) last.fill);
                    if (Arrays.equals(expect, Arrays.copyOfRange(model, last.offset, last.offset + last.length))) {
                        String out = Tools.check("qemu-io", "-r", "-f", "raw", "-c", "read -P " + last.fill + " " + last.offset + " " + last.length,
                                server.uri(s.name()));
                        assertFalse(out.contains("Pattern verification failed"), out);
                    }
                    Path copy = dir.resolve(s.name() + ".nbdcopy");
                    Tools.check("nbdcopy", server.uri(s.name()), copy.toString());
                    long at = Arrays.mismatch(model, Files.readAllBytes(copy));
                    if (at >= 0) fail(s.name() + ": read back through the export differs from the model at " + at + "; log " + server.log());
                }
                assertImageIs(s, model, dir);
            }));
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> nbdcopyIntoTheExport() throws Exception {
        List<TestImages.Served> served = writable(images("nbdcopy"));
        List<DynamicTest> tests = new ArrayList<>();
        for (TestImages.Served s : served) {
            tests.add(DynamicTest.dynamicTest(s.name(), () -> {
                // a source of the same size: random data with zero runs, so nbdcopy sends writes and zeroing
                long size = Files.size(s.expected());
                byte[] src = new byte[(int) size];
                new Random(size).nextBytes(src);
                for (int at = 0; at < src.length; at += 3 << 16) Arrays.fill(src, at, (int) Math.min(src.length, at + (1 << 16) + 1000), (byte) 0);
                Path source = Files.write(dir.resolve(s.name() + ".src"), src);
                try (var server = TestImages.serveWritable(List.of(s), dir.resolve("c.sock"), NbdServer.Options.defaults())) {
                    Tools.check("nbdcopy", "--connections=4", "--requests=8", "--request-size=65536", source.toString(), server.uri(s.name()));
                    assertTrue(server.log().stream().noneMatch(l -> l.contains("failed") || l.contains("rejected")), server.log().toString());
                }
                assertImageIs(s, src, dir);
            }));
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> twoQemuIoWritersAtOnceOnDistinctRanges() throws Exception {
        List<TestImages.Served> served = writable(images("concurrent"));
        List<DynamicTest> tests = new ArrayList<>();
        for (TestImages.Served s : served) {
            tests.add(DynamicTest.dynamicTest(s.name(), () -> {
                byte[] model = Files.readAllBytes(s.expected());
                int half = model.length / 2;
                try (var server = TestImages.serveWritable(List.of(s), dir.resolve("t.sock"), NbdServer.Options.defaults())) {
                    List<CompletableFuture<Void>> runs = new ArrayList<>();
                    for (int w = 0; w < 2; w++) {
                        int base = w * half;
                        int step = Math.max(1, half / 16);
                        List<Op> ops = new ArrayList<>();
                        for (int at = 0; at + step <= half; at += step) {
                            ops.add(new Op("write -P " + (0x30 + w) + " " + (base + at) + " " + step, base + at, step, 0x30 + w));
                        }
                        apply(model, ops);
                        runs.add(CompletableFuture.runAsync(() -> {
                            try {
                                qemuIo(server.uri(s.name()), ops);
                            } catch (Exception e) {
                                throw new RuntimeException(e);
                            }
                        }));
                    }
                    for (CompletableFuture<Void> r : runs) r.get();
                }
                assertImageIs(s, model, dir);
            }));
        }
        return tests.stream();
    }
}
