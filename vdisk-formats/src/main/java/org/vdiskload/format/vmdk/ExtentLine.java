package org.vdiskload.format.vmdk;

/**
 * One extent description of a descriptor: {@code ACCESS SECTORS TYPE ["FILE" [OFFSET]]}.
 *
 * @param line     1-based line number in the descriptor, for messages
 * @param access   RW, RDONLY or NOACCESS
 * @param sectors  extent size in 512-byte sectors
 * @param type     FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, VMFSRDM, VMFSRAW, SESPARSE...
 * @param fileName the extent file, relative to the descriptor; null for ZERO extents
 * @param offset   for FLAT extents, the first sector of the extent inside the file; -1 if not given
 */
record ExtentLine(int line, String access, long sectors, String type, String fileName, long offset) {
}
