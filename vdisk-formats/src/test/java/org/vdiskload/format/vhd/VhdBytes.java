package org.vdiskload.format.vhd;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Annotated VHD structures for the header and bad-input tests. */
final class VhdBytes {
    /** 5 MiB by the geometry 151 x 4 x 17 (qemu's for "5M": 5257216 bytes). */
    static final long CHS_SIZE = 151L * 4 * 17 * 512;

    private VhdBytes() {}

    /** A footer as qemu writes it: creator "qemu", geometry 151/4/17, checksum filled in. */
    static ByteBuffer footer(int diskType, long dataOffset, String app, long currentSize) {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.BIG_ENDIAN);
        b.put(ascii("conectix"));           //   0 cookie
        b.putInt(2);                        //   8 features: the reserved bit, always set
        b.putInt(0x00010000);               //  12 file format version 1.0
        b.putLong(dataOffset);              //  16 data offset: the dynamic header, or all ones (fixed)
        b.putInt(0x2a000000);               //  24 timestamp, seconds since 2000-01-01
        b.put(ascii(app));                  //  28 creator application
        b.putInt(0x00050003);               //  32 creator version 5.3
        b.put(ascii("Wi2k"));               //  36 creator host OS
        b.putLong(currentSize);             //  40 original size
        b.putLong(currentSize);             //  48 current size
        b.putShort((short) 151);            //  56 cylinders
        b.put((byte) 4);                    //  58 heads
        b.put((byte) 17);                   //  59 sectors per track
        b.putInt(diskType);                 //  60 disk type: 2 fixed, 3 dynamic, 4 differencing
        b.putInt(0);                        //  64 checksum (filled in below)
        b.put(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}); // 68 unique id
        b.put((byte) 0);                    //  84 saved state
        //                                      85 427 reserved bytes, zero
        return withChecksum(b, 64);
    }

    /** A dynamic disk header with its BAT at {@code tableOffset}. */
    static ByteBuffer dynamicHeader(long tableOffset, int maxTableEntries, int blockSize, String parentName) {
        ByteBuffer b = ByteBuffer.allocate(1024).order(ByteOrder.BIG_ENDIAN);
        b.put(ascii("cxsparse"));           //   0 cookie
        b.putLong(-1L);                     //   8 data offset: unused, all ones
        b.putLong(tableOffset);             //  16 table offset: the BAT
        b.putInt(0x00010000);               //  24 header version 1.0
        b.putInt(maxTableEntries);          //  28 max table entries
        b.putInt(blockSize);                //  32 block size
        b.putInt(0);                        //  36 checksum (filled in below)
        b.put(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}); // 40 parent unique id
        b.putInt(0);                        //  56 parent timestamp
        b.putInt(0);                        //  60 reserved
        b.put(parentName.getBytes(StandardCharsets.UTF_16BE)); // 64 parent unicode name (512 bytes)
        //                                     576 8 parent locators of 24 bytes, then 256 reserved
        return withChecksum(b, 36);
    }

    /** Writes parent locator {@code slot} into a dynamic header (and refreshes its checksum). */
    static void locator(ByteBuffer header, int slot, String code, int dataLength, long dataOffset) {
        int o = 576 + slot * 24;
        header.put(o, ascii(code));         // +0 platform code
        header.putInt(o + 4, 512);          // +4 platform data space
        header.putInt(o + 8, dataLength);   // +8 platform data length
        header.putInt(o + 12, 0);           // +12 reserved
        header.putLong(o + 16, dataOffset); // +16 platform data offset
        withChecksum(header, 36);
    }

    static ByteBuffer withChecksum(ByteBuffer b, int at) {
        b.putInt(at, 0);
        long sum = 0;
        for (int i = 0; i < b.capacity(); i++) sum += Byte.toUnsignedInt(b.get(i));
        b.putInt(at, (int) ~sum);
        return b.rewind();
    }

    /**
     * A dynamic (or differencing) disk of {@link #CHS_SIZE} bytes in 2 MiB blocks: footer copy at 0,
     * header at 512, BAT (3 entries) at 1536, block 0 allocated at 2048 (bitmap all ones, data 0x5a),
     * footer at the end. Returns the whole file.
     */
    static ByteBuffer dynamicImage(int diskType) {
        int block = 2 << 20;
        ByteBuffer img = ByteBuffer.allocate(2048 + 512 + block + 512).order(ByteOrder.BIG_ENDIAN);
        img.put(0, footer(diskType, 512, "qemu", CHS_SIZE).array());
        img.put(512, dynamicHeader(1536, 3, block, diskType == 4 ? "parent.vhd" : "").array());
        img.putInt(1536, 2048 / 512);       // BAT[0]: block 0 at sector 4
        img.putInt(1540, -1);               // BAT[1]: unallocated
        img.putInt(1544, -1);               // BAT[2]: unallocated
        for (int i = 1548; i < 2048; i++) img.put(i, (byte) 0xff); // BAT padding to the sector
        for (int i = 0; i < 512; i++) img.put(2048 + i, (byte) 0xff); // block 0's sector bitmap
        for (int i = 0; i < block; i++) img.put(2560 + i, (byte) 0x5a); // block 0's data
        img.put(2560 + block, footer(diskType, 512, "qemu", CHS_SIZE).array());
        return img;
    }

    /** A fixed disk: 1 MiB of 0x5a data, then its footer (sized by current size, "win "). */
    static ByteBuffer fixedImage() {
        ByteBuffer img = ByteBuffer.allocate((1 << 20) + 512).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < 1 << 20; i++) img.put(i, (byte) 0x5a);
        img.put(1 << 20, footer(2, -1L, "win ", 1 << 20).array());
        return img;
    }

    static Path write(Path dir, String name, ByteBuffer content) throws java.io.IOException {
        Path p = dir.resolve(name);
        byte[] a = new byte[content.capacity()];
        content.duplicate().rewind().get(a);
        Files.write(p, a);
        return p;
    }

    static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }
}
