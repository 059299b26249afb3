package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ScriptedFormat;
import org.vdiskload.testing.QemuOracle;
import org.vdiskload.testing.Tools;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import java.net.UnixDomainSocketAddress;

/** The images the server tests export, and a server over all of them. */
final class TestImages {
    /**
     * The testdata scripts whose images every server test exports. A format's script joins this list
     * once its reader is on the branch: the tests then cover it with no other change.
     */
    static final List<String> SCRIPTS = List.of("raw.sh", "every-format.sh");

    static {
        Images.register(new ScriptedFormat());
    }

    private TestImages() {}

    /** One exported image: its export name, how to open it, and its content as a raw file to compare with. */
    record Served(String name, Tools.GeneratedImage image, Path expected) {}

    /** Every script's images plus the test-only vdltest chains; {@code expected} made by qemu-img (or, for vdltest, the library). */
    static List<Served> make(Path dir) throws Exception {
        List<Served> out = new ArrayList<>();
        Path scratch = Files.createDirectories(dir.resolve("expected"));
        for (String script : SCRIPTS) {
            Path sub = Files.createDirectories(dir.resolve(script.replace(".sh", "")));
            for (Tools.GeneratedImage img : Tools.generate(script, sub)) {
                out.add(new Served(img.path().getFileName().toString(), img, qemuRaw(img, scratch)));
            }
        }
        Tools.GeneratedImage chain = vdltestChain(Files.createDirectories(dir.resolve("vdltest")));
        out.add(new Served(chain.path().getFileName().toString(), chain, libraryRaw(chain, scratch)));
        return out;
    }

    /**
     * A vdltest image over a raw base: every extent kind the map has (data at both depths, an
     * allocated zero run, a library-only run, and a range unallocated to the bottom, past the base's end).
     */
    static Tools.GeneratedImage vdltestChain(Path dir) throws IOException {
        byte[] base = new byte[3 << 20];
        Arrays.fill(base, (byte) 0xbb);
        Files.write(dir.resolve("base.raw"), base);
        byte[] payload = new byte[64 << 10];
        for (int i = 0; i < payload.length; i++) payload[i] = (byte) (i * 7 + 3);
        String header = "VDLTEST\nsize=" + (4 << 20) + "\nbacking=base.raw\nbacking-format=raw\n"
                + "data=" + (1 << 20) + ":65536:4096\n"
                + "zero=" + (2 << 20) + ":131072\n"
                + "encoded=" + ((2 << 20) + (256 << 10)) + ":65536:90\n\n";
        byte[] file = new byte[4096 + payload.length];
        byte[] h = header.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(h, 0, file, 0, h.length);
        System.arraycopy(payload, 0, file, 4096, payload.length);
        Path top = dir.resolve("chain.vdltest");
        Files.write(top, file);
        return new Tools.GeneratedImage(top, "vdltest", List.of());
    }

    private static Path qemuRaw(Tools.GeneratedImage img, Path scratch) throws Exception {
        Path out = scratch.resolve(img.path().getFileName() + ".raw");
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "convert", "-f", img.format(), "-O", "raw"));
        if (img.flag("snapshot") != null) cmd.addAll(List.of("-l", img.flag("snapshot")));
        cmd.addAll(List.of(img.path().toString(), out.toString()));
        Tools.run(cmd, null).requireSuccess(cmd);
        return out;
    }

    private static Path libraryRaw(Tools.GeneratedImage img, Path scratch) throws IOException {
        Path out = scratch.resolve(img.path().getFileName() + ".raw");
        try (DiskImage d = open(img); FileChannel f = FileChannel.open(out, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate((int) d.size());
            d.read(b, 0);
            f.write(b.flip());
        }
        return out;
    }

    static DiskImage open(Tools.GeneratedImage img) throws IOException {
        OpenOptions o = img.format().equals("vdltest") ? OpenOptions.DEFAULTS.withFormat("vdltest") : QemuOracle.options(img);
        return Images.open(img.path(), o);
    }

    /** A running server over {@code served}, with the disks it reads; closing it closes both. */
    record Running(NbdServer server, Path socket, List<DiskImage> disks, List<String> log) implements AutoCloseable {
        String uri(String export) {
            return "nbd+unix:///" + export + "?socket=" + socket;
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (DiskImage d : disks) d.close();
        }
    }

    static Running serve(List<Served> served, Path socket, NbdServer.Options options) throws IOException {
        List<DiskImage> disks = new ArrayList<>();
        for (Served s : served) disks.add(open(s.image()));
        return serve(served, disks, socket, options);
    }

    /** A server over {@code served}, each image opened for writing. */
    static Running serveWritable(List<Served> served, Path socket, NbdServer.Options options) throws IOException {
        return serveWritable(served, socket, options, BlockSizes.DEFAULT);
    }

    /** A server over {@code served}, each image opened for writing and exported with {@code sizes}. */
    static Running serveWritable(List<Served> served, Path socket, NbdServer.Options options, BlockSizes sizes) throws IOException {
        List<DiskImage> disks = new ArrayList<>();
        for (Served s : served) disks.add(Images.open(s.image().path(), QemuOracle.options(s.image()).withWritable(true)));
        return serve(served, disks, socket, options, sizes);
    }

    private static Running serve(List<Served> served, List<DiskImage> disks, Path socket, NbdServer.Options options) throws IOException {
        return serve(served, disks, socket, options, BlockSizes.DEFAULT);
    }

    private static Running serve(List<Served> served, List<DiskImage> disks, Path socket, NbdServer.Options options, BlockSizes sizes)
            throws IOException {
        List<Export> exports = new ArrayList<>();
        for (int i = 0; i < served.size(); i++) {
            DiskImage d = disks.get(i);
            exports.add(new Export(served.get(i).name(), d.formatName() + " image " + d.path(), d, sizes));
        }
        List<String> log = new java.util.concurrent.CopyOnWriteArrayList<>();
        Consumer<String> sink = log::add;
        NbdServer server = NbdServer.start(exports, UnixDomainSocketAddress.of(socket), options.withLog(sink));
        return new Running(server, socket, disks, log);
    }
}
