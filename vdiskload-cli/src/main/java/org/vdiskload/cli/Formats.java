package org.vdiskload.cli;

import org.vdiskload.image.ImageFormat;
import org.vdiskload.image.Images;
import picocli.CommandLine;

/** Format names given on the command line. */
final class Formats {
    private Formats() {}

    static ImageFormat require(CommandLine cl, String name) {
        return Images.byName(name).orElseThrow(() -> new CommandLine.ParameterException(cl,
                "unknown image format '" + name + "' (known: " + String.join(", ", Images.formats().stream().map(ImageFormat::name).toList()) + ")"));
    }

    static long size(CommandLine cl, String text) {
        try {
            return org.vdiskload.image.Sizes.parse(text);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cl, "invalid size '" + text + "'");
        }
    }
}
