package org.vdiskload.format.qcow;

import org.vdiskload.image.CreateOptions;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * qemu-img create -f qcow: the header, the backing file name right after it, and a zeroed L1 table
 * (8-byte aligned, padded to whole sectors). Like qemu, 4 KiB clusters with 512-entry L2 tables, or
 * 512-byte clusters with 4096-entry tables over a backing file (so that copy-on-write never has to
 * copy more than a sector). qcow records no backing format: the one given is checked, not stored.
 */
final class QcowCreator {
    private QcowCreator() {}

    static List<Path> create(long size, CreateOptions options) throws IOException {
        Path target = options.target();
        if (options.takeBoolean("encryption", false) || options.take("encrypt.format", null) != null) {
            throw ImageException.unsupported(target, "creating encrypted qcow images is not supported");
        }
        options.takeChoice("preallocation", "off", "off");
        options.requireAllTaken("qcow");
        if (size <= 0) throw ImageException.invalid(target, "image size is too small, cannot be zero length");
        long rounded = Math.addExact(size, 511) & ~511L;
        String backing = options.backingFile();
        byte[] name = backing == null ? new byte[0] : backing.getBytes(StandardCharsets.UTF_8);
        if (name.length > QcowHeader.MAX_BACKING_NAME) {
            throw ImageException.invalid(target, "backing file name is too long (" + name.length + " bytes, max " + QcowHeader.MAX_BACKING_NAME + ")");
        }
        boolean backed = backing != null;
        long l1Offset = (QcowHeader.LENGTH + name.length + 7) & ~7L;
        QcowHeader h = new QcowHeader(backed ? QcowHeader.LENGTH : 0, name.length, 0, rounded,
                backed ? 9 : 12, backed ? 12 : 9, QcowHeader.CRYPT_NONE, l1Offset);
        try {
            h = QcowHeader.parse(h.encode(), target); // the reader's limits (a size too large for the L1 table)
        } catch (ImageException e) {
            throw ImageException.invalid(target, e.problem());
        }
        long l1Bytes = (h.l1Entries() * 8 + 511) & ~511L;
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(0);
            f.write(h.encode().array());
            f.write(name);
            f.setLength(l1Offset + l1Bytes); // the L1 table: zeros
        } catch (java.io.FileNotFoundException e) {
            throw ImageException.invalid(target, "cannot create: " + e.getMessage());
        }
        return List.of(target);
    }
}
