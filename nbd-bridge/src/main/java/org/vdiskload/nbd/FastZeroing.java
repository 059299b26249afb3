package org.vdiskload.nbd;

/** An image that can tell, cheaply and before trying, whether zeroing a range would write data. */
interface FastZeroing {
    /** Whether zeroing {@code [pos, pos+length)} touches no data (metadata only). */
    boolean zeroesFast(long pos, long length, boolean mayUnmap);
}
