package org.vdiskload.format.vhdx;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * A small valid dynamic VHDX built field by field, for the parser tests to break one rule at a time.
 * Layout: file identifier at 0, headers at 64 KiB and 128 KiB, region tables at 192 KiB and 256 KiB,
 * log at 1 MiB, metadata region at 2 MiB, BAT at 3 MiB, payload block 0 at 4 MiB. 4 MiB disk of 1 MiB
 * blocks: block 0 FULLY_PRESENT (bytes 0x5a), 1 ZERO, 2 NOT_PRESENT, 3 UNMAPPED.
 */
final class TestImage {
    static final int MB = 1 << 20;
    static final int KB = 1 << 10;
    static final int LOG = MB, METADATA = 2 * MB, BAT = 3 * MB, BLOCK0 = 4 * MB;
    /** Offsets of the items inside the metadata region. */
    static final int ITEM_PARAMS = 64 * KB, ITEM_SIZE = ITEM_PARAMS + 8, ITEM_PAGE83 = ITEM_SIZE + 8,
            ITEM_LOGICAL = ITEM_PAGE83 + 16, ITEM_PHYSICAL = ITEM_LOGICAL + 4;
    static final Guid DATA_WRITE_1 = Guid.of("11111111-2222-3333-4444-555555555555");
    static final Guid DATA_WRITE_2 = Guid.of("66666666-7777-8888-9999-aaaaaaaaaaaa");

    /** Where {@link #differencing} puts the sector bitmap block. */
    static final int BITMAP = 5 * MB;
    static final int ITEM_LOCATOR = ITEM_PHYSICAL + 4;

    final ByteBuffer b;

    TestImage() {
        this(5 * MB);
    }

    private TestImage(int fileSize) {
        b = ByteBuffer.allocate(fileSize).order(ByteOrder.LITTLE_ENDIAN);
        b.put(0, "vhdxfile".getBytes(StandardCharsets.US_ASCII)); // file type identifier signature
        header(64 * KB, 1, DATA_WRITE_1);
        header(128 * KB, 2, DATA_WRITE_2);
        regionTable(192 * KB);
        regionTable(256 * KB);
        metadata();
        u64(BAT, BLOCK0 | 6L);       // block 0: FileOffsetMB 4, state 6 FULLY_PRESENT
        u64(BAT + 8, 2);             // block 1: state 2 ZERO
        u64(BAT + 16, 0);            // block 2: state 0 NOT_PRESENT
        u64(BAT + 24, 3);            // block 3: state 3 UNMAPPED
        for (int i = 0; i < MB; i++) b.put(BLOCK0 + i, (byte) 0x5a);
    }

    /**
     * A differencing variant: HasParent, a parent locator (parent_linkage {@code linkage}, relative_path
     * {@code relativePath}), block 0 PARTIALLY_PRESENT with its bytes 0x6b and sectors 0-3 present in the
     * sector bitmap at 5 MiB.
     */
    static TestImage differencing(Guid linkage, String relativePath) {
        TestImage img = new TestImage(6 * MB);
        img.u32(METADATA + ITEM_PARAMS + 4, 2);                 // file parameters: HasParent
        img.u16(METADATA + 10, 6);                              // EntryCount: one more, the parent locator
        byte[] key1 = "parent_linkage".getBytes(StandardCharsets.UTF_16LE);
        byte[] value1 = ("{" + linkage + "}").getBytes(StandardCharsets.UTF_16LE);
        byte[] key2 = "relative_path".getBytes(StandardCharsets.UTF_16LE);
        byte[] value2 = relativePath.getBytes(StandardCharsets.UTF_16LE);
        int at = METADATA + ITEM_LOCATOR;
        img.guid(at, ParentLocator.VHDX_LOCATOR);               // LocatorType
        img.u16(at + 16, 0);                                    // Reserved
        img.u16(at + 18, 2);                                    // KeyValueCount
        int strings = 20 + 2 * 12;
        int[] lengths = {key1.length, value1.length, key2.length, value2.length};
        byte[][] all = {key1, value1, key2, value2};
        int pos = strings;
        for (int i = 0; i < 2; i++) {
            int e = at + 20 + 12 * i;
            img.u32(e, pos);                                    // KeyOffset
            img.u32(e + 4, pos + lengths[2 * i]);               // ValueOffset
            img.u16(e + 8, lengths[2 * i]);                     // KeyLength
            img.u16(e + 10, lengths[2 * i + 1]);                // ValueLength
            img.b.put(at + pos, all[2 * i]).put(at + pos + lengths[2 * i], all[2 * i + 1]);
            pos += lengths[2 * i] + lengths[2 * i + 1];
        }
        img.metadataEntry(5, VhdxMetadata.PARENT_LOCATOR, ITEM_LOCATOR, pos, 4);
        img.u64(BAT, BLOCK0 | 7L);                              // block 0: PARTIALLY_PRESENT
        img.u64(BAT + 4096 * 8, BITMAP | 6L);                   // sector bitmap entry of chunk 0 (index = chunk ratio 4096)
        img.b.put(BITMAP, (byte) 0x0f);                         // sectors 0-3 of block 0 are in this file
        for (int i = 0; i < MB; i++) img.b.put(BLOCK0 + i, (byte) 0x6b);
        return img;
    }

    private void header(int at, long sequence, Guid dataWrite) {
        u32(at, 0x64616568);                 // Signature "head"
        u32(at + 4, 0);                      // Checksum (set by crc below)
        u64(at + 8, sequence);               // SequenceNumber
        guid(at + 16, Guid.of("0f0f0f0f-0000-0000-0000-000000000001")); // FileWriteGuid
        guid(at + 32, dataWrite);            // DataWriteGuid
        guid(at + 48, Guid.ZERO);            // LogGuid: zero, the log is empty
        u16(at + 64, 0);                     // LogVersion
        u16(at + 66, 1);                     // Version
        u32(at + 68, MB);                    // LogLength
        u64(at + 72, LOG);                   // LogOffset
        crc(at, 4096);
    }

    private void regionTable(int at) {
        u32(at, 0x69676572);                 // Signature "regi"
        u32(at + 4, 0);                      // Checksum
        u32(at + 8, 2);                      // EntryCount
        u32(at + 12, 0);                     // Reserved
        guid(at + 16, RegionTable.BAT);      // entry 0: Guid (BAT)
        u64(at + 32, BAT);                   //          FileOffset
        u32(at + 40, MB);                    //          Length
        u32(at + 44, 1);                     //          Required
        guid(at + 48, RegionTable.METADATA); // entry 1: Guid (metadata)
        u64(at + 64, METADATA);              //          FileOffset
        u32(at + 72, MB);                    //          Length
        u32(at + 76, 1);                     //          Required
        crc(at, 64 * KB);
    }

    private void metadata() {
        int at = METADATA;
        b.put(at, "metadata".getBytes(StandardCharsets.US_ASCII)); // Signature
        u16(at + 8, 0);                      // Reserved
        u16(at + 10, 5);                     // EntryCount
        metadataEntry(0, VhdxMetadata.FILE_PARAMETERS, ITEM_PARAMS, 8, 4);          // IsRequired
        metadataEntry(1, VhdxMetadata.VIRTUAL_DISK_SIZE, ITEM_SIZE, 8, 6);          // IsRequired, IsVirtualDisk
        metadataEntry(2, VhdxMetadata.PAGE_83, ITEM_PAGE83, 16, 6);
        metadataEntry(3, VhdxMetadata.LOGICAL_SECTOR_SIZE, ITEM_LOGICAL, 4, 6);
        metadataEntry(4, VhdxMetadata.PHYSICAL_SECTOR_SIZE, ITEM_PHYSICAL, 4, 6);
        u32(at + ITEM_PARAMS, MB);           // file parameters: BlockSize
        u32(at + ITEM_PARAMS + 4, 0);        //                  LeaveBlocksAllocated 0, HasParent 0
        u64(at + ITEM_SIZE, 4 * MB);         // virtual disk size
        guid(at + ITEM_PAGE83, Guid.of("abcdef01-2345-6789-abcd-ef0123456789")); // page 83 data
        u32(at + ITEM_LOGICAL, 512);         // logical sector size
        u32(at + ITEM_PHYSICAL, 4096);       // physical sector size
    }

    /** Writes metadata table entry {@code i}: ItemId, Offset, Length, flags (IsUser 1, IsVirtualDisk 2, IsRequired 4). */
    TestImage metadataEntry(int i, Guid id, int offset, int length, int flags) {
        int e = METADATA + 32 + 32 * i;
        guid(e, id);                         // ItemId
        u32(e + 16, offset);                 // Offset
        u32(e + 20, length);                 // Length
        u32(e + 24, flags);                  // IsUser / IsVirtualDisk / IsRequired
        u32(e + 28, 0);                      // Reserved2
        return this;
    }

    /** Sets LogGuid in both headers (non-zero: the log must be replayed). */
    TestImage logGuid(Guid g) {
        for (int at : new int[] {64 * KB, 128 * KB}) guid(at + 48, g);
        return fixCrcs();
    }

    /** A zero descriptor for {@link #logEntry}: {@code length} zeros at {@code fileOffset}. */
    record Zero(long fileOffset, long length) {}

    /** A data descriptor for {@link #logEntry}: the 4 KiB {@code sector} at {@code fileOffset}. */
    record Data(long fileOffset, byte[] sector) {}

    /**
     * Writes a log entry at {@code logSector} of the log: header, zero descriptors then data descriptors,
     * then one data sector per data descriptor. Returns the entry's length in sectors.
     */
    int logEntry(int logSector, long sequence, long tail, Guid logGuid, long flushed, long last, List<Zero> zeros, List<Data> datas) {
        int descriptors = zeros.size() + datas.size();
        int descriptorSectors = (64 + 32 * descriptors + 4095) / 4096;
        int sectors = descriptorSectors + datas.size();
        int at = LOG + logSector * 4096;
        u32(at, 0x65676f6c);                 // Signature "loge"
        u32(at + 4, 0);                      // Checksum
        u32(at + 8, sectors * 4096L);        // EntryLength
        u32(at + 12, tail);                  // Tail
        u64(at + 16, sequence);              // SequenceNumber
        u32(at + 24, descriptors);           // DescriptorCount
        u32(at + 28, 0);                     // Reserved
        guid(at + 32, logGuid);              // LogGuid
        u64(at + 48, flushed);               // FlushedFileOffset
        u64(at + 56, last);                  // LastFileOffset
        int d = at + 64;
        for (Zero z : zeros) {
            u32(d, 0x6f72657a);              // "zero"
            u32(d + 4, 0);                   // Reserved
            u64(d + 8, z.length());          // ZeroLength
            u64(d + 16, z.fileOffset());     // FileOffset
            u64(d + 24, sequence);           // SequenceNumber
            d += 32;
        }
        int dataAt = at + descriptorSectors * 4096;
        for (Data x : datas) {
            ByteBuffer sector = ByteBuffer.wrap(x.sector()).order(ByteOrder.LITTLE_ENDIAN);
            u32(d, 0x63736564);              // "desc"
            u32(d + 4, sector.getInt(4092)); // TrailingBytes: the sector's last 4 bytes
            u64(d + 8, sector.getLong(0));   // LeadingBytes: the sector's first 8 bytes
            u64(d + 16, x.fileOffset());     // FileOffset
            u64(d + 24, sequence);           // SequenceNumber
            d += 32;
            u32(dataAt, 0x61746164);         // data sector: Signature "data"
            u32(dataAt + 4, sequence >>> 32); //             SequenceHigh
            b.put(dataAt + 8, x.sector(), 8, 4084); //       Data
            u32(dataAt + 4092, sequence & 0xffffffffL); //   SequenceLow
            dataAt += 4096;
        }
        crc(at, sectors * 4096);
        return sectors;
    }

    TestImage u16(int at, int v) { b.putShort(at, (short) v); return this; }
    TestImage u32(int at, long v) { b.putInt(at, (int) v); return this; }
    TestImage u64(int at, long v) { b.putLong(at, v); return this; }

    TestImage guid(int at, Guid g) {
        b.putLong(at, g.low()).putLong(at + 8, g.high());
        return this;
    }

    /** Recomputes the CRC-32C of the structure of {@code size} bytes at {@code at} (checksum at +4). */
    TestImage crc(int at, int size) {
        b.putInt(at + 4, 0);
        CRC32C c = new CRC32C();
        c.update(b.duplicate().position(at).limit(at + size));
        b.putInt(at + 4, (int) c.getValue());
        return this;
    }

    /** Re-checksums both headers and both region tables after an edit. */
    TestImage fixCrcs() {
        crc(64 * KB, 4096).crc(128 * KB, 4096).crc(192 * KB, 64 * KB).crc(256 * KB, 64 * KB);
        return this;
    }

    /** Sets a header field in both headers and re-checksums them. */
    TestImage bothHeaders(int field, long value, int width) {
        for (int at : new int[] {64 * KB, 128 * KB}) {
            if (width == 2) u16(at + field, (int) value);
            else if (width == 4) u32(at + field, value);
            else u64(at + field, value);
        }
        return fixCrcs();
    }

    /** Sets a region table field in both copies and re-checksums them. */
    TestImage bothRegionTables(int field, long value, int width) {
        for (int at : new int[] {192 * KB, 256 * KB}) {
            if (width == 4) u32(at + field, value);
            else u64(at + field, value);
        }
        return fixCrcs();
    }

    Path write(Path dir, String name) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }
}
