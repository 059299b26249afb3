package org.vdiskload.format.vmdk;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Where a layer's descriptor lies, and the one change a writer makes to it: a new content ID. The text is
 * rewritten with one positional write of the same length (the CID is written with as many hex digits as
 * before, at least 8), so a crash leaves the old or the new descriptor, never a torn one.
 *
 * @param file   the file holding the descriptor
 * @param offset where it starts
 * @param area   bytes reserved for it inside a sparse file, or -1 where it is the whole file
 */
record DescriptorCid(ImageFile file, long offset, long area) {
    private static final Pattern CID_LINE = Pattern.compile("(?m)^([ \\t]*CID[ \\t]*=[ \\t]*\"?)([0-9A-Fa-f]+)");

    void rewrite(long cid) throws IOException {
        long length = area >= 0 ? area : file.size();
        ByteBuffer b = file.readStruct(offset, length, ByteOrder.LITTLE_ENDIAN, "descriptor");
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        int textEnd = 0;
        while (textEnd < bytes.length && bytes[textEnd] != 0) textEnd++;
        // ISO-8859-1 maps bytes to chars one to one, so offsets in the string are offsets in the file.
        String text = new String(bytes, 0, textEnd, StandardCharsets.ISO_8859_1);
        Matcher m = CID_LINE.matcher(text);
        if (!m.find()) throw ImageException.corrupt(file.path(), offset, "CID", "descriptor has no CID line to update");
        String hex = String.format("%0" + Math.max(8, m.group(2).length()) + "x", cid);
        String updated = text.substring(0, m.start(2)) + hex + text.substring(m.end(2));
        byte[] out = updated.getBytes(StandardCharsets.ISO_8859_1);
        if (area >= 0 && out.length > area) {
            throw ImageException.unsupported(file.path(), "the embedded descriptor has no room for a new CID");
        }
        file.writeFully(ByteBuffer.wrap(out), offset);
        file.force(true);
    }
}
