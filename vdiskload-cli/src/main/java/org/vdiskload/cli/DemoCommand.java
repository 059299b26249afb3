package org.vdiskload.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code vdiskload demo}: makes a sample disk (testdata/sample.sh) and shows what vdiskload sees in it. */
@Command(name = "demo", description = "Make a sample image (a qcow2 overlay over a GPT disk), show its info and map, attach it and show its files.")
final class DemoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR", defaultValue = "/tmp/vdiskload-demo", description = "Where to make the sample (default: ${DEFAULT-VALUE}).")
    Path dir;

    @Override
    public Integer call() throws IOException, InterruptedException {
        String home = System.getenv("VDISKLOAD_HOME");
        Path script = home == null ? null : Path.of(home, "testdata", "sample.sh");
        if (script == null || !Files.isRegularFile(script)) {
            throw new IOException("demo: testdata/sample.sh not found; run the demo from a checkout with ./vdiskload demo");
        }
        PrintWriter out = Main.out(spec);
        out.println("$ testdata/sample.sh " + dir);
        out.flush();
        Process p = new ProcessBuilder("sh", script.toString(), dir.toString()).inheritIO().start();
        if (p.waitFor() != 0) throw new IOException("demo: testdata/sample.sh failed (exit " + p.exitValue() + ")");
        Path image = dir.resolve("sample.qcow2");
        for (String[] args : new String[][] {
                {"info", "--backing-chain", image.toString()},
                {"map", image.toString()},
                {"compare", image.toString(), dir.resolve("sample-base.qcow2").toString()}}) {
            out.println();
            out.println("$ vdiskload " + String.join(" ", args));
            out.flush();
            Main.run(out, spec.commandLine().getErr(), args);
        }
        return attach(out, image);
    }

    /** Attaches the sample read-only, mounts its partition and shows the files in it; then lets it go. */
    private int attach(PrintWriter out, Path image) throws IOException, InterruptedException {
        out.println();
        if (!Files.isWritable(Path.of("/dev/fuse")) || !"0".equals(uid())) {
            out.println("(attaching needs root and /dev/fuse: skipped)");
            return 0;
        }
        PrintWriter err = spec.commandLine().getErr();
        StringWriter shown = new StringWriter();
        out.println("$ vdiskload -r --show " + image);
        out.flush();
        int code = Main.run(new PrintWriter(shown), err, "-r", "--show", image.toString());
        out.print(shown);
        if (code != 0) return code;
        List<String> devices = shown.toString().lines().toList();
        String disk = devices.get(devices.size() - 1);
        Path mnt = Files.createDirectories(dir.resolve("mnt"));
        try {
            out.println();
            out.println("$ vdiskload -l");
            out.flush();
            Main.run(out, err, "-l");
            shell(out, "ls -l " + disk + "*", "mount -o ro " + disk + "p1 " + mnt, "ls -l " + mnt, "cat " + mnt.resolve("hello.txt"), "umount " + mnt);
        } finally {
            out.println();
            out.println("$ vdiskload -d " + disk);
            out.flush();
            code = Main.run(out, err, "-d", disk);
        }
        return code;
    }

    private static void shell(PrintWriter out, String... commands) throws IOException, InterruptedException {
        for (String c : commands) {
            out.println();
            out.println("$ " + c);
            out.flush();
            Process p = new ProcessBuilder("sh", "-c", c).redirectErrorStream(true).start();
            out.print(new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8));
            out.flush();
            if (p.waitFor() != 0) throw new IOException("demo: '" + c + "' failed (exit " + p.exitValue() + ")");
        }
    }

    private static String uid() throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith("Uid:")) return l.split("\\s+")[1];
        }
        return "";
    }
}
