package org.vdiskload.cli;

import picocli.CommandLine.Model.CommandSpec;
import picocli.codegen.docgen.manpage.ManPageGenerator;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Writes an AsciiDoc man page for vdiskload and each of its commands (vdiskload.adoc, vdiskload-info.adoc,
 * ...) from the commands' own picocli model, so that a page cannot drift from the options it documents.
 * Run by the build (exec-maven-plugin, into target/man); scripts/build-debs makes man pages of them with
 * asciidoctor. A test class, so that picocli-codegen stays out of the package.
 */
public final class ManPages {
    /** The NAME line of vdiskload(1) (picocli takes a command's header, else its description's first line). */
    static final String SUMMARY = "attach virtual-disk images (VMDK, VDI, QCOW2, VHD, VHDX, raw) as block devices;"
            + " show, map, convert, check and serve them";

    private ManPages() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) throw new IllegalArgumentException("usage: ManPages OUTDIR");
        int code = write(new File(args[0]));
        if (code != 0) throw new IOException("picocli's man page generator failed with exit code " + code);
    }

    /** Every page into {@code dir}; picocli's exit code (0 when all were written). */
    static int write(File dir) throws IOException {
        CommandSpec top = Main.commandLine().getCommandSpec();
        top.usageMessage().header(SUMMARY);
        // The custom synopsis is three usages, one a line: AsciiDoc would join a paragraph's lines ('+' breaks).
        top.usageMessage().customSynopsis(Arrays.stream(top.usageMessage().customSynopsis())
                .map(line -> line.strip() + " +").toArray(String[]::new));
        int code = ManPageGenerator.generateManPage(dir, null, new boolean[0], true, top);
        try (var pages = Files.list(dir.toPath())) {
            for (Path page : pages.toList()) {
                // picocli 4.7.6 writes an option without a long name as "*-c*, ::" (joining an empty name).
                Files.writeString(page, Files.readString(page).replaceAll("(?m)^(\\*-[^ ]*\\*), ::$", "$1::"));
            }
        }
        return code;
    }
}
