package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The volatile header of an ESXi seSparse extent (qemu's VMDKSESparseVolatileHeader), little-endian, one
 * sector where the const header's volatile_header_offset points: u64 magic, u64 free_gt_number (grain
 * tables in use), u64 next_txn_seq_number, u64 replay_journal, 480 bytes of zero padding. A reader only
 * checks it: the journal fields matter to a writer, and a journal waiting for replay is refused, as qemu does.
 */
final class SeSparseVolatileHeader {
    static final int SIZE = 512;
    static final long MAGIC = 0xcafecafeL;

    private SeSparseVolatileHeader() {
    }

    /** Validates the volatile header in {@code b}, read at {@code at} of {@code f}. */
    static void check(ByteBuffer b, ImageFile f, long at) throws ImageException {
        b = b.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long magic = b.getLong(0);
        if (magic != MAGIC) {
            throw ImageException.corrupt(f.path(), at, "volatile header magic", String.format("bad seSparse volatile header magic 0x%016x", magic));
        }
        if (b.getLong(24) != 0) {
            // qemu: "Image is dirty, Replaying journal not supported"
            throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at + 24, "replay_journal",
                    "seSparse extent is dirty: its journal needs replaying, which is not supported; ESXi replays it when it next opens the disk");
        }
        for (int i = 32; i < SIZE; i++) {
            if (b.get(i) != 0) {
                throw new ImageException(ImageException.Kind.UNSUPPORTED, f.path(), at + i, "volatile header padding",
                        "non-zero seSparse volatile header padding");
            }
        }
    }
}
