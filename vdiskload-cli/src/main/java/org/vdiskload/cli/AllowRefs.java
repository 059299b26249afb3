package org.vdiskload.cli;

import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code --allow-refs DIR} (repeatable) and {@code VDISKLOAD_ALLOW_REFS=DIR:DIR}: the directories, beyond each
 * image's own, that images' references (backing files, extents, parent locators, layout sources) may lead to.
 */
final class AllowRefs {
    @Option(names = ReferencePolicy.FLAG, paramLabel = "DIR",
            description = "Let images refer to files in DIR too (backing files, VMDK extents, VHD/VHDX parents,"
                    + " layout sources); by default only files in each image's own directory. Repeatable;"
                    + " VDISKLOAD_ALLOW_REFS=DIR:DIR adds more.")
    List<Path> directories = new ArrayList<>();

    /** The policy of the flags and of VDISKLOAD_ALLOW_REFS in this process's environment. */
    ReferencePolicy policy() throws ImageException {
        return policy(System.getenv(ReferencePolicy.ENVIRONMENT));
    }

    /** The policy of the flags and of {@code environment}, the variable's value (null or "" for none). */
    ReferencePolicy policy(String environment) throws ImageException {
        List<Path> all = new ArrayList<>(directories);
        if (environment != null) {
            for (String d : environment.split(":")) {
                if (d.isEmpty()) continue; // "a::b", a trailing ':': as PATH, no entry
                try {
                    all.add(Path.of(d));
                } catch (java.nio.file.InvalidPathException e) {
                    throw ImageException.invalid(null, ReferencePolicy.ENVIRONMENT + ": invalid directory '" + d + "'");
                }
            }
        }
        return ReferencePolicy.allowing(all);
    }
}
