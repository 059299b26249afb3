package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.nbd.Export;
import org.vdiskload.nbd.NbdServer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URLEncoder;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code vdiskload serve}: exports images over NBD, read-only, with qemu-nbd's options where they apply. */
@Command(name = "serve", description = {
        "Export images over NBD (read-only): a Unix socket by default, TCP with --bind/--port.",
        "Each FILE is an export named after the file (the first is also the default export, name \"\")."})
final class ServeCommand implements Callable<Integer> {
    static final int DEFAULT_PORT = 10809;

    @Spec CommandSpec spec;
    @Mixin ImageOptions image;

    @Parameters(paramLabel = "FILE", arity = "1..*")
    List<Path> files;

    @Option(names = {"-x", "--name"}, paramLabel = "NAME", description = "Export name (one FILE only); default: the file name.")
    String name;

    @Option(names = {"-k", "--socket"}, paramLabel = "PATH",
            description = "Unix socket to listen on; default: $XDG_RUNTIME_DIR (or /tmp)/vdiskload-PID.sock.")
    Path socket;

    @Option(names = {"-b", "--bind"}, paramLabel = "ADDR", description = "Listen on TCP at this address (default 127.0.0.1 when --port is given).")
    String bind;

    @Option(names = {"-p", "--port"}, paramLabel = "PORT", description = "Listen on this TCP port (default " + DEFAULT_PORT + " when --bind is given).")
    Integer port;

    @Option(names = {"-t", "--persistent"}, description = "Keep serving after the last client disconnects.")
    boolean persistent;

    @Option(names = {"-e", "--shared"}, paramLabel = "N", defaultValue = "16",
            description = "Clients served at once, 0 = no limit (default ${DEFAULT-VALUE}).")
    int shared;

    @Option(names = {"-r", "--read-only"}, description = "Export read-only (the only mode for now).")
    boolean readOnly;

    @Override
    public Integer call() throws Exception {
        if (name != null && files.size() > 1) throw new CommandLine.ParameterException(spec.commandLine(), "--name needs exactly one FILE");
        if (shared < 0) throw new CommandLine.ParameterException(spec.commandLine(), "--shared must be 0 or more");
        if (socket != null && (bind != null || port != null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--socket and --bind/--port exclude each other");
        }
        SocketAddress address = address();
        List<DiskImage> disks = new ArrayList<>();
        try {
            List<Export> exports = new ArrayList<>();
            for (Path f : files) {
                DiskImage d = image.open(f);
                disks.add(d);
                exports.add(Export.of(name != null ? name : f.getFileName().toString(), d));
            }
            PrintWriter err = spec.commandLine().getErr();
            NbdServer.Options options = NbdServer.Options.defaults().withShared(shared).withPersistent(persistent)
                    .withLog(line -> {
                        err.println("vdiskload serve: " + line);
                        err.flush();
                    });
            NbdServer server;
            try {
                server = NbdServer.start(exports, address, options);
            } catch (IllegalArgumentException e) {
                throw new IOException(e.getMessage());
            }
            CountDownLatch cleaned = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                server.close();
                try {
                    cleaned.await(); // let the main thread close the images before the JVM goes
                } catch (InterruptedException ignored) {
                    // exiting anyway
                }
            }, "vdiskload-serve-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            PrintWriter out = Main.out(spec);
            for (Export e : exports) out.println(e.name() + ": " + uri(server.address(), e.name()));
            out.flush();
            try {
                server.await();
            } finally {
                closeAll(disks);
                disks.clear();
                cleaned.countDown();
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // the hook is running: it waited for us
                }
            }
            return 0;
        } finally {
            closeAll(disks);
        }
    }

    private SocketAddress address() {
        if (bind != null || port != null) {
            return new InetSocketAddress(bind != null ? bind : "127.0.0.1", port != null ? port : DEFAULT_PORT);
        }
        if (socket != null) return UnixDomainSocketAddress.of(socket);
        String dir = System.getenv("XDG_RUNTIME_DIR");
        return UnixDomainSocketAddress.of(Path.of(dir != null && !dir.isEmpty() ? dir : "/tmp", "vdiskload-" + ProcessHandle.current().pid() + ".sock"));
    }

    /** The NBD URI a client (qemu-img, nbdinfo, nbdcopy) can use for this export. */
    static String uri(SocketAddress address, String export) {
        String name = URLEncoder.encode(export, StandardCharsets.UTF_8).replace("+", "%20");
        if (address instanceof UnixDomainSocketAddress u) return "nbd+unix:///" + name + "?socket=" + u.getPath();
        InetSocketAddress in = (InetSocketAddress) address;
        String host = in.getAddress().getHostAddress();
        if (host.contains(":")) host = "[" + host + "]";
        return "nbd://" + host + ":" + in.getPort() + "/" + name;
    }

    private static void closeAll(List<DiskImage> disks) throws IOException {
        IOException first = null;
        for (DiskImage d : disks) {
            try {
                d.close();
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }
}
