package org.vdiskload.ops;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks on an output file before anything is written to it. */
final class Targets {
    private Targets() {}

    /** Refuses a target that is one of the files the source image reads (it would destroy the source). */
    static void requireNotInChain(DiskImage image, Path target) throws IOException {
        if (!Files.exists(target)) return;
        for (ImageLayer layer : image.layers()) {
            for (ImageFile f : layer.files()) {
                if (Files.isSameFile(f.path(), target)) {
                    throw ImageException.invalid(target, "is a file of the source image (" + image.path() + "); refusing to overwrite it");
                }
            }
        }
        if (!Files.isRegularFile(target)) {
            throw ImageException.invalid(target, "exists and is not a regular file; refusing to overwrite it");
        }
    }
}
