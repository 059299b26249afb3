package org.vdiskload.serving;

/**
 * An image that can tell, cheaply and before trying, whether zeroing a range would write data (what
 * NBD's fast-zero flag asks).
 */
public interface FastZeroing {
    /** Whether zeroing {@code [pos, pos+length)} touches no data (metadata only). */
    boolean zeroesFast(long pos, long length, boolean mayUnmap);
}
