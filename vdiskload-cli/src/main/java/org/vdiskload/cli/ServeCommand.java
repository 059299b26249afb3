package org.vdiskload.cli;

import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.nbd.BlockSizes;
import org.vdiskload.nbd.Export;
import org.vdiskload.nbd.NbdServer;
import org.vdiskload.nbd.TlsCredentials;
import org.vdiskload.serving.ImageLock;
import org.vdiskload.serving.ServedImage;
import org.vdiskload.text.Printable;
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
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/**
 * {@code vdiskload serve}: exports images over NBD with qemu-nbd's options where they apply. Read-write
 * unless -r; a read-write image is locked against other writers (qemu's lock bytes, see {@link ImageLock})
 * and flushed and closed when the server stops (last client gone, SIGINT, SIGTERM).
 */
@Command(name = "serve", description = {
        "Export images over NBD, read-write unless -r: a Unix socket by default, TCP with --bind/--port.",
        "Each FILE is an export named after the file (the first is also the default export, name \"\")."})
final class ServeCommand implements Callable<Integer> {
    static final int DEFAULT_PORT = 10809;

    @Spec CommandSpec spec;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "Image format; detected from content when not given.")
    String format;

    @Option(names = "--backing-format", paramLabel = "FMT",
            description = "Format of a backing file the image does not name a format for (old qcow2, qcow).")
    String backingFormat;

    @Option(names = {"-l", "--load-snapshot"}, paramLabel = "NAME|ID",
            description = "Export this internal snapshot instead of the active layer (read-only, unless --snapshot).")
    String internalSnapshot;

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
            description = "Clients served at once, up to " + NbdServer.MAX_CLIENTS + "; 0 = " + NbdServer.MAX_CLIENTS + " (default ${DEFAULT-VALUE}).")
    int shared;

    @Option(names = {"-r", "--read-only"}, description = "Export read-only.")
    boolean readOnly;

    @Option(names = {"-s", "--snapshot"},
            description = "Take writes into a temporary overlay thrown away at exit; the image itself is not changed.")
    boolean snapshot;

    @Option(names = "--tls-cert", paramLabel = "FILE",
            description = "Require TLS: the server's certificate chain (PEM, the server's certificate first). Needs --tls-key.")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "The private key of --tls-cert (PEM, unencrypted PKCS#8: BEGIN PRIVATE KEY).")
    Path tlsKey;

    @Option(names = "--tls-creds", paramLabel = "DIR",
            description = "Require TLS with DIR/server-cert.pem and DIR/server-key.pem (the layout of qemu's tls-creds-x509 dir).")
    Path tlsCreds;

    @Mixin AllowRefs allowRefs;

    @Override
    public Integer call() throws Exception {
        if (name != null && files.size() > 1) throw new CommandLine.ParameterException(spec.commandLine(), "--name needs exactly one FILE");
        if (shared < 0 || shared > NbdServer.MAX_CLIENTS) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--shared must be 0 to " + NbdServer.MAX_CLIENTS);
        }
        if (socket != null && (bind != null || port != null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--socket and --bind/--port exclude each other");
        }
        if (snapshot && readOnly) throw new CommandLine.ParameterException(spec.commandLine(), "--snapshot and --read-only exclude each other");
        ReferencePolicy refs = allowRefs.policy();
        TlsCredentials tls = tls();
        SocketAddress address = address();
        List<String> names = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (Path f : files) {
            String n = name != null ? name : f.getFileName().toString();
            if (!seen.add(n)) throw new IOException("two exports are named '" + n + "'");
            names.add(n);
        }
        List<ServedImage> served = new ArrayList<>();
        try {
            List<Export> exports = new ArrayList<>();
            for (int i = 0; i < files.size(); i++) {
                ServedImage s = ServedImage.open(files.get(i), OpenOptions.DEFAULTS.withFormat(format).withBackingFormat(backingFormat)
                        .withSnapshot(internalSnapshot).withRefs(refs), access(), "serve");
                served.add(s);
                String what = s.disk().formatName() + " image " + s.disk().path() + (snapshot ? " (snapshot: writes are discarded at exit)" : "");
                exports.add(new Export(names.get(i), what, s.disk(), BlockSizes.DEFAULT));
            }
            PrintWriter err = spec.commandLine().getErr();
            NbdServer.Options options = NbdServer.Options.defaults().withShared(shared).withPersistent(persistent).withTls(tls)
                    .withLog(line -> {
                        err.println("vdiskload serve: " + Printable.of(line));
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
            for (Export e : exports) out.println(Printable.of(e.name() + ": " + uri(server.address(), e.name(), tls != null)));
            out.flush();
            try {
                server.await();
            } finally {
                try {
                    closeAll(served, err);
                } finally {
                    cleaned.countDown();
                    try {
                        Runtime.getRuntime().removeShutdownHook(hook);
                    } catch (IllegalStateException shuttingDown) {
                        // the hook is running: it waited for us
                    }
                }
            }
            return 0;
        } finally {
            closeAll(served, null);
        }
    }

    /**
     * How the images are served: read-write (and locked), read-only (an internal snapshot too), or
     * read-only beneath a throwaway overlay (locked for reading, so nobody changes it underneath).
     * Read-only alone takes no lock, as before: others may write the image meanwhile.
     */
    private ServedImage.Access access() {
        if (snapshot) return ServedImage.Access.SNAPSHOT;
        return readOnly || internalSnapshot != null ? ServedImage.Access.READ_ONLY_UNLOCKED : ServedImage.Access.READ_WRITE;
    }

    /** The TLS identity the options name, or null without TLS. */
    private TlsCredentials tls() throws IOException {
        if (tlsCreds != null && (tlsCert != null || tlsKey != null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--tls-creds and --tls-cert/--tls-key exclude each other");
        }
        if (tlsCreds != null) return TlsCredentials.fromDirectory(tlsCreds);
        if ((tlsCert == null) != (tlsKey == null)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--tls-cert and --tls-key go together");
        }
        return tlsCert == null ? null : TlsCredentials.load(tlsCert, tlsKey);
    }

    private SocketAddress address() {
        if (bind != null || port != null) {
            return new InetSocketAddress(bind != null ? bind : "127.0.0.1", port != null ? port : DEFAULT_PORT);
        }
        if (socket != null) return UnixDomainSocketAddress.of(socket);
        String dir = System.getenv("XDG_RUNTIME_DIR");
        return UnixDomainSocketAddress.of(Path.of(dir != null && !dir.isEmpty() ? dir : "/tmp", "vdiskload-" + ProcessHandle.current().pid() + ".sock"));
    }

    /** The NBD URI a client (qemu-img, nbdinfo, nbdcopy) can use for this export: nbds when TLS is required. */
    static String uri(SocketAddress address, String export, boolean tls) {
        String name = URLEncoder.encode(export, StandardCharsets.UTF_8).replace("+", "%20");
        String scheme = tls ? "nbds" : "nbd";
        if (address instanceof UnixDomainSocketAddress u) return scheme + "+unix:///" + name + "?socket=" + u.getPath();
        InetSocketAddress in = (InetSocketAddress) address;
        String host = in.getAddress().getHostAddress();
        if (host.contains(":")) host = "[" + host + "]";
        return scheme + "://" + host + ":" + in.getPort() + "/" + name;
    }

    /**
     * Flushes and closes every image (the library flushes a writable one on close), each before letting
     * go of its locks: no other writer may start before the last write is durable. Says so for images
     * written in place on {@code log}, when given.
     */
    private static void closeAll(List<ServedImage> served, PrintWriter log) throws IOException {
        IOException first = null;
        for (ServedImage s : served) {
            try {
                s.close();
                if (s.writesImage() && log != null) {
                    log.println("vdiskload serve: flushed and closed " + s.disk().path());
                    log.flush();
                }
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        served.clear();
        if (first != null) throw first;
    }
}
