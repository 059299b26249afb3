package org.vdiskload.ops;

import org.vdiskload.check.CheckReport;
import org.vdiskload.check.RepairMode;
import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.nio.file.Path;

/** qemu-img check: checks (and with a repair mode, repairs) one image's own metadata, not its backing chain. */
public final class Check {
    private Check() {}

    /** The report, or an UNSUPPORTED error for formats without checks (raw). */
    public static CheckReport check(Path path, String format, RepairMode mode) throws IOException {
        return check(path, format, mode, ReferencePolicy.IMAGE_DIRECTORY);
    }

    /** {@link #check(Path, String, RepairMode)}, the image's own references (extents) following {@code refs}. */
    public static CheckReport check(Path path, String format, RepairMode mode, ReferencePolicy refs) throws IOException {
        OpenOptions o = OpenOptions.DEFAULTS.withFormat(format).withBacking(false).withWritable(mode != RepairMode.NONE).withRepair(mode != RepairMode.NONE).withRefs(refs);
        try (DiskImage image = Images.open(path, o)) {
            CheckReport report = image.layers().get(0).check(mode);
            if (report == null) throw ImageException.unsupported(path, "this image format (" + image.formatName() + ") does not support checks");
            return report;
        }
    }
}
