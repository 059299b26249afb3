package org.vdiskload.cli;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.ops.Check;
import org.vdiskload.text.Printable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code vdiskload check}: qemu-img check's messages, JSON and exit codes (0 clean, 1 failed, 2 corrupt, 3 leaks). */
@Command(name = "check", description = "Check an image's metadata; -r leaks|all repairs. Exit 0 clean, 1 failed, 2 corruptions, 3 leaks.")
final class CheckCommand implements Callable<Integer> {
    /** qemu-img check's status for a format without checks. */
    static final int EXIT_UNSUPPORTED = 63;

    @Spec CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Image format; detected from content when not given.")
    String format;

    @Option(names = "-r", paramLabel = "leaks|all", description = "Repair leaks, or everything that can be repaired safely.")
    String repair;

    @Option(names = "--output", paramLabel = "human|json", defaultValue = "human", description = "Output format.")
    OutputFormat output;

    @Parameters(paramLabel = "FILE")
    Path file;

    @Mixin AllowRefs allowRefs;

    @Override
    public Integer call() throws IOException {
        RepairMode mode = switch (repair == null ? "" : repair) {
            case "" -> RepairMode.NONE;
            case "leaks" -> RepairMode.LEAKS;
            case "all" -> RepairMode.ALL;
            default -> throw new picocli.CommandLine.ParameterException(spec.commandLine(), "invalid -r value '" + repair + "' (leaks or all)");
        };
        CheckReport r;
        try {
            r = Check.check(file, format, mode, allowRefs.policy());
        } catch (org.vdiskload.image.error.ImageException e) {
            if (e.kind() != org.vdiskload.image.error.ImageException.Kind.UNSUPPORTED || !e.problem().contains("does not support checks")) throw e;
            spec.commandLine().getErr().println("vdiskload: " + Printable.of(e.getMessage()));
            return EXIT_UNSUPPORTED;
        }
        PrintWriter out = Main.out(spec);
        if (output == OutputFormat.json) out.println(json(r));
        else human(out, r);
        out.flush();
        return r.exitCode();
    }

    private String json(CheckReport r) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        if (r.imageEndOffset() != null) m.put("image-end-offset", r.imageEndOffset());
        if (r.totalClusters() != null) m.put("total-clusters", r.totalClusters());
        m.put("check-errors", r.checkErrors());
        if (r.leaks() > 0) m.put("leaks", r.leaks());
        if (r.corruptions() > 0) m.put("corruptions", r.corruptions());
        if (r.leaksFixed() > 0) m.put("leaks-fixed", r.leaksFixed());
        if (r.corruptionsFixed() > 0) m.put("corruptions-fixed", r.corruptionsFixed());
        m.put("filename", file.toString());
        if (r.compressedClusters() != null) m.put("compressed-clusters", r.compressedClusters());
        if (r.allocatedClusters() != null) m.put("allocated-clusters", r.allocatedClusters());
        m.put("format", r.format());
        if (r.fragmentedClusters() != null) m.put("fragmented-clusters", r.fragmentedClusters());
        return Json.mapper().writeValueAsString(m);
    }

    private static void human(PrintWriter out, CheckReport r) {
        for (String m : r.messages()) out.println(Printable.of(m));
        if (r.corruptionsFixed() + r.leaksFixed() > 0) {
            out.println("The following inconsistencies were found and repaired:");
            out.println();
            out.println("    " + r.leaksFixed() + " leaked clusters");
            out.println("    " + r.corruptionsFixed() + " corruptions");
            out.println();
            out.println("Double checking the fixed image now...");
        }
        if (r.clean()) {
            out.println("No errors were found on the image.");
        } else {
            if (r.corruptions() > 0) {
                out.println();
                out.println(r.corruptions() + " errors were found on the image.");
                out.println("Data may be corrupted, or further writes to the image may corrupt it.");
            }
            if (r.leaks() > 0) {
                out.println();
                out.println(r.leaks() + " leaked clusters were found on the image.");
                out.println("This means waste of disk space, but no harm to data.");
            }
            if (r.checkErrors() > 0) {
                out.println();
                out.println(r.checkErrors() + " internal errors have occurred during the check.");
            }
        }
        if (r.totalClusters() != null && r.allocatedClusters() != null && r.totalClusters() > 0) {
            out.printf("%d/%d = %.2f%% allocated, %.2f%% fragmented, %.2f%% compressed clusters%n",
                    r.allocatedClusters(), r.totalClusters(), 100.0 * r.allocatedClusters() / r.totalClusters(),
                    r.allocatedClusters() == 0 ? 0.0 : 100.0 * nz(r.fragmentedClusters()) / r.allocatedClusters(),
                    r.allocatedClusters() == 0 ? 0.0 : 100.0 * nz(r.compressedClusters()) / r.allocatedClusters());
        }
        if (r.imageEndOffset() != null) out.println("Image end offset: " + r.imageEndOffset());
    }

    private static long nz(Long v) {
        return v == null ? 0 : v;
    }
}
