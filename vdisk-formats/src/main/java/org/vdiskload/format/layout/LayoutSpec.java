package org.vdiskload.format.layout;

import java.util.List;
import java.util.UUID;

/**
 * A layout file as parsed and checked against its schema: what the user asked for, before the sources
 * are opened. Sizes not given are null; defaults that need the sources are settled by {@link DiskPlan}.
 */
record LayoutSpec(Table table, Long size, int sectorSize, long alignment, UUID diskGuid, int mbrSignature,
                  List<Part> partitions) {

    enum Table { GPT, MBR }

    /**
     * One partition entry.
     *
     * @param path     its JSON path ("$.partitions[1]"), for messages
     * @param source   the source file name as written, or null for an empty partition
     * @param gptType  the GPT type GUID (gpt tables), else null
     * @param mbrType  the MBR type byte (mbr tables), else -1
     * @param filesystem what a directory or tar source is built into, or null if the layout does not say (ext4)
     */
    record Part(String path, String source, Long size, Long start, UUID gptType, int mbrType, String name, UUID guid,
                boolean bootable, boolean legacyBiosBootable, boolean readOnly, FileSystemKind filesystem) {
    }
}
