package org.vdiskload.format.vmdk;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vdiskload.testing.fuzz.Companions;
import org.vdiskload.testing.fuzz.ImageTarget;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Coverage-guided fuzzing of the VMDK reader, two targets:
 * <ul>
 *   <li>{@link #sparse}: a binary extent (KDMV sparse header, embedded descriptor, grain directory and tables,
 *       stream markers and footer; COWD headers; seSparse const and volatile headers, 64-bit grain directory and
 *       tables). Flag bit 4 opens it through a descriptor naming it as a SPARSE (VMFSSPARSE, SESPARSE) extent of the
 *       capacity its header states (the only way to a COWD or seSparse extent), bit 5 as a delta of parent.vmdk.</li>
 *   <li>{@link #descriptor}: the descriptor text, naming extents beside it: flat.raw (64 KiB), sparse.vmdk (a
 *       monolithicSparse extent of 2048 sectors), stream.vmdk (streamOptimized, 2048 sectors) and parent.vmdk.</li>
 * </ul>
 * Inputs: see {@link ImageTarget}.
 */
class VmdkFuzzTarget {
    private static final int SPARSE_VIA_DESCRIPTOR = 16, AS_DELTA = 32;

    private static final ImageTarget SPARSE = new ImageTarget("vmdk", "extent.vmdk")
            .companionImage("parent.vmdk", "vmdk", 1 << 20, Map.of())
            .opening(VmdkFuzzTarget::throughDescriptor);

    private static final ImageTarget DESCRIPTOR = new ImageTarget("vmdk", "image.vmdk").plain()
            .companion("flat.raw", Companions.pattern(64 << 10, 7))
            .companionImage("sparse.vmdk", "vmdk", 1 << 20, Map.of())
            .companionImage("stream.vmdk", "vmdk", 1 << 20, Map.of("subformat", "streamOptimized"))
            .companionImage("parent.vmdk", "vmdk", 1 << 20, Map.of());

    /** parent.vmdk's CID, which a delta names as its parentCID. */
    private static final String PARENT_CID = cid(SPARSE.sandbox().path("parent.vmdk"));

    @FuzzTest
    @DictionaryFile(resourcePath = "vmdk.dict")
    void sparse(byte[] input) throws IOException {
        SPARSE.run(input);
    }

    @FuzzTest
    @DictionaryFile(resourcePath = "vmdk.dict")
    void descriptor(byte[] input) throws IOException {
        DESCRIPTOR.run(input);
    }

    private static String cid(Path vmdk) {
        try {
            String text = new String(Files.readAllBytes(vmdk), StandardCharsets.ISO_8859_1);
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("\nCID=([0-9a-fA-F]{8})").matcher(text);
            if (!m.find()) throw new IllegalStateException(vmdk + " has no CID");
            return m.group(1);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * With flag bit 4, a descriptor image.vmdk naming the extent with the capacity its header gives (a seSparse
     * extent, which has no other way in, as SESPARSE).
     */
    private static Path throughDescriptor(Path extent, int flags) throws IOException {
        if ((flags & SPARSE_VIA_DESCRIPTOR) == 0) return extent;
        ByteBuffer head = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(extent)) {
            ch.read(head, 0);
        }
        boolean cowd = head.get(0) == 'C' && head.get(1) == 'O' && head.get(2) == 'W' && head.get(3) == 'D';
        boolean seSparse = head.getLong(0) == SeSparseHeader.MAGIC;
        long sectors = cowd ? Integer.toUnsignedLong(head.getInt(12)) : seSparse ? head.getLong(16) : head.getLong(12);
        String createType = cowd ? "vmfsSparse" : seSparse ? "seSparse" : "monolithicSparse";
        String extentType = cowd ? "VMFSSPARSE" : seSparse ? "SESPARSE" : "SPARSE";
        String parent = (flags & AS_DELTA) != 0 ? "parentFileNameHint=\"parent.vmdk\"\n" : "";
        String text = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=" + ((flags & AS_DELTA) != 0 ? PARENT_CID : "ffffffff")
                + "\ncreateType=\"" + createType + "\"\n" + parent
                + "RW " + Long.toUnsignedString(sectors) + " " + extentType + " \"extent.vmdk\"\n";
        Path descriptor = extent.resolveSibling("image.vmdk");
        Files.writeString(descriptor, text, StandardCharsets.US_ASCII);
        return descriptor;
    }
}
