package org.vdiskload.image;

import java.nio.ByteBuffer;

/**
 * One unit of a compressed write ({@code convert -c}), compressed by {@link ImageLayer#compress} and
 * written by {@link ImageLayer#writeCompressed(CompressedUnit)}: either its compressed bytes as the
 * format stores them, or, where compressing does not shrink it, its own bytes, which the format then
 * stores plainly.
 *
 * @param pos    the unit's disk offset, a multiple of the layer's compression unit
 * @param packed the compressed bytes, or null
 * @param plain  the unit's bytes where {@code packed} is null, else null
 */
public record CompressedUnit(long pos, byte[] packed, ByteBuffer plain) {
    public static CompressedUnit packed(long pos, byte[] packed) {
        return new CompressedUnit(pos, packed, null);
    }

    public static CompressedUnit plain(long pos, ByteBuffer plain) {
        return new CompressedUnit(pos, null, plain);
    }
}
