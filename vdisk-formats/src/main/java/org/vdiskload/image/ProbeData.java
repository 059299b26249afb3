package org.vdiskload.image;

import java.nio.ByteBuffer;

/**
 * The bytes a format probe may look at: the file's first bytes (up to {@link #HEAD_BYTES}) and
 * its last bytes (up to {@link #TAIL_BYTES}; a fixed VHD is recognised by its footer).
 */
public record ProbeData(ByteBuffer head, ByteBuffer tail, long fileSize) {
    public static final int HEAD_BYTES = 4096;
    public static final int TAIL_BYTES = 1024;

    /** A read-only view of the head, position 0. */
    @Override
    public ByteBuffer head() {
        return head.asReadOnlyBuffer();
    }

    @Override
    public ByteBuffer tail() {
        return tail.asReadOnlyBuffer();
    }

    /** Whether the head starts with {@code magic}. */
    public boolean headStartsWith(byte[] magic) {
        return startsWith(head, 0, magic);
    }

    /** Whether the head holds {@code magic} at {@code offset}. */
    public boolean headHas(int offset, byte[] magic) {
        return startsWith(head, offset, magic);
    }

    private static boolean startsWith(ByteBuffer b, int offset, byte[] magic) {
        if (offset < 0 || b.limit() < offset + magic.length) return false;
        for (int i = 0; i < magic.length; i++) if (b.get(offset + i) != magic[i]) return false;
        return true;
    }
}
