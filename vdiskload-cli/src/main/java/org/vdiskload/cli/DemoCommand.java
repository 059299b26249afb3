package org.vdiskload.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code vdiskload demo}: makes a sample disk (testdata/sample.sh) and shows what vdiskload sees in it. */
@Command(name = "demo", description = "Make a sample image (a qcow2 overlay over a GPT disk) and show its info and map.")
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
        return 0;
    }
}
