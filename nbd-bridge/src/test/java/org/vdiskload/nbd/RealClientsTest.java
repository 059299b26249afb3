package org.vdiskload.nbd;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Extent;
import org.vdiskload.testing.Tools;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The server against real NBD clients: libnbd's nbdinfo and nbdcopy, qemu-img and qemu-io. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RealClientsTest {
    private static final Pattern MAP_LINE = Pattern.compile("^\\s*(\\d+)\\s+(\\d+)\\s+(\\d+)\\s", Pattern.MULTILINE);

    @TempDir
    static Path dir;
    List<TestImages.Served> served;
    TestImages.Running server;

    @BeforeAll
    void start() throws Exception {
        served = TestImages.make(dir.resolve("images"));
        server = TestImages.serve(served, dir.resolve("nbd.sock"), NbdServer.Options.defaults());
    }

    @AfterAll
    void stop() throws Exception {
        server.close();
        assertTrue(Files.notExists(dir.resolve("nbd.sock")), "socket removed on close");
    }

    private Path out(String name) {
        return dir.resolve("out-" + name);
    }

    private static void assertSameFile(Path expected, Path actual, String what) throws Exception {
        long m = Files.mismatch(expected, actual);
        if (m >= 0) fail(what + ": differs from the image's content at offset " + m);
    }

    @TestFactory
    Stream<DynamicTest> everyImage() {
        List<DynamicTest> tests = new ArrayList<>();
        for (TestImages.Served s : served) {
            tests.add(DynamicTest.dynamicTest(s.name() + ": nbdcopy equals the content", () -> {
                Path o = out(s.name() + ".nbdcopy");
                Tools.check("nbdcopy", server.uri(s.name()), o.toString());
                assertSameFile(s.expected(), o, "nbdcopy");
            }));
            tests.add(DynamicTest.dynamicTest(s.name() + ": qemu-img convert from the export", () -> {
                Path o = out(s.name() + ".qemu");
                Tools.check("qemu-img", "convert", "-f", "raw", "-O", "raw", server.uri(s.name()), o.toString());
                assertSameFile(s.expected(), o, "qemu-img convert");
            }));
            tests.add(DynamicTest.dynamicTest(s.name() + ": nbdinfo --map agrees with the library's map", () -> {
                List<long[]> theirs = merged(parseMap(Tools.check("nbdinfo", "--map", server.uri(s.name()))));
                List<long[]> ours = new ArrayList<>();
                try (DiskImage d = TestImages.open(s.image())) {
                    for (Extent e : d.map(0, d.size())) ours.add(new long[] {e.start(), e.length(), StatusDescriptors.flagsOf(e)});
                }
                ours = merged(ours);
                assertEquals(describe(ours), describe(theirs), s.name() + ": base:allocation map");
            }));
        }
        return tests.stream();
    }

    private static List<long[]> parseMap(String out) {
        List<long[]> list = new ArrayList<>();
        Matcher m = MAP_LINE.matcher(out);
        while (m.find()) list.add(new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3))});
        return list;
    }

    /** Adjacent runs of equal status joined, so how either side splits them does not matter. */
    private static List<long[]> merged(List<long[]> runs) {
        List<long[]> out = new ArrayList<>();
        for (long[] r : runs) {
            long[] last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && last[2] == r[2] && last[0] + last[1] == r[0]) last[1] += r[1];
            else out.add(r.clone());
        }
        return out;
    }

    private static String describe(List<long[]> runs) {
        StringBuilder sb = new StringBuilder();
        for (long[] r : runs) sb.append(r[0]).append('+').append(r[1]).append(':').append(r[2]).append('\n');
        return sb.toString();
    }

    @Test
    void nbdinfoListsEveryExport() throws Exception {
        String list = Tools.check("nbdinfo", "--list", "nbd+unix://?socket=" + server.socket());
        for (TestImages.Served s : served) {
            assertTrue(list.contains("export=\"" + s.name() + "\":"), list);
        }
        assertTrue(list.contains("is_read_only: true") && list.contains("can_multi_conn: true"), list);
        assertTrue(list.contains("block_size_maximum: 33554432"), list);
    }

    @Test
    void twoClientsReadAtOnce() throws Exception {
        TestImages.Served s = served.stream().max((a, b) -> Long.compare(a.expected().toFile().length(), b.expected().toFile().length())).orElseThrow();
        List<CompletableFuture<Path>> runs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Path o = out("concurrent-" + i);
            runs.add(CompletableFuture.supplyAsync(() -> {
                try {
                    // --connections 2 --requests 16: each nbdcopy also pipelines over multiple connections
                    Tools.check("nbdcopy", "--connections=2", "--requests=16", "--request-size=65536", server.uri(s.name()), o.toString());
                    return o;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            }));
        }
        for (CompletableFuture<Path> r : runs) assertSameFile(s.expected(), r.get(), "concurrent nbdcopy");
    }

    @Test
    void qemuIoCannotWrite() throws Exception {
        TestImages.Served s = served.get(0);
        Tools.Result r = Tools.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0x55 0 512", server.uri(s.name())), null);
        assertNotEquals(0, r.exit(), r.stdout() + r.stderr());
        assertTrue((r.stdout() + r.stderr()).contains("Permission denied"), r.stdout() + r.stderr());
        // and the image is unchanged
        Path o = out("after-write");
        Tools.check("nbdcopy", server.uri(s.name()), o.toString());
        assertSameFile(s.expected(), o, "after the refused write");
    }
}
