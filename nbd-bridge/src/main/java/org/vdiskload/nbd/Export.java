package org.vdiskload.nbd;

import org.vdiskload.image.DiskImage;

import java.util.Objects;

/**
 * One image offered under a name. The image stays owned by the caller (who opens, flushes and closes
 * it); the server reads it, and writes it when it was opened for writing.
 *
 * @param name        the export name clients ask for (at most 4096 bytes of UTF-8)
 * @param description a line for humans (NBD_INFO_DESCRIPTION, the LIST reply)
 * @param image       the disk
 * @param sizes       the size constraints advertised and enforced
 */
public record Export(String name, String description, DiskImage image, BlockSizes sizes) {

    public Export {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(sizes, "sizes");
        if (Wire.utf8(name).length > Nbd.MAX_STRING) throw new IllegalArgumentException("export name longer than 4096 bytes");
        if (name.indexOf('\0') >= 0) throw new IllegalArgumentException("export name contains NUL");
        if (image.size() % sizes.minimum() != 0) {
            throw new IllegalArgumentException("export " + name + ": size " + image.size() + " is not a multiple of the minimum block size " + sizes.minimum());
        }
    }

    /** An export with the default size constraints and a description naming the format and file. */
    public static Export of(String name, DiskImage image) {
        return new Export(name, image.formatName() + " image " + image.path(), image, BlockSizes.DEFAULT);
    }

    public long size() {
        return image.size();
    }

    /** Whether clients may change it: the image was opened for writing (else the export is read-only). */
    public boolean writable() {
        return image.isWritable();
    }
}
