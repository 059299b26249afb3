package org.vdiskload.attach.fuse;

import org.vdiskload.image.DiskImage;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * One file the mount shows: bytes {@code [offset, offset+length)} of an image, read-write unless
 * {@code writable} is false (or the image was opened read-only).
 */
public record FuseFile(String name, DiskImage image, long offset, long length, boolean writable) {
    public FuseFile {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(image, "image");
        int bytes = name.getBytes(StandardCharsets.UTF_8).length;
        if (bytes == 0 || bytes > 255 || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0 || name.indexOf('\0') >= 0)
            throw new IllegalArgumentException("bad file name for a FUSE mount: '" + name + "'");
        if (offset < 0 || length < 0 || length > image.size() || offset > image.size() - length)
            throw new IllegalArgumentException(name + ": range [" + offset + ", +" + length + ") is not inside "
                    + image.path() + " (" + image.size() + " bytes)");
    }

    /** Whether writes are allowed: asked for, and the image can take them. */
    boolean canWrite() {
        return writable && image.isWritable();
    }
}
