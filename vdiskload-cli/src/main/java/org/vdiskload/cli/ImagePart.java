package org.vdiskload.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code IMAGE[:PART]} of {@code mount} and {@code tar}. An image's own name may hold ':' (libvirt's and
 * backup tools' time stamps do), so the whole argument is the image whenever such a file exists; only
 * otherwise does the text after the last ':' name the partition, and then the text before it must exist.
 *
 * @param part the partition's number, GPT name, label or UUID; null when not given
 */
record ImagePart(Path image, String part) {
    static ImagePart parse(String arg) throws IOException {
        if (arg.isEmpty()) throw new IOException("an empty IMAGE");
        Path whole = Path.of(arg);
        if (Files.exists(whole)) return new ImagePart(whole, null);
        int colon = arg.lastIndexOf(':');
        if (colon > 0 && colon < arg.length() - 1 && Files.exists(Path.of(arg.substring(0, colon)))) {
            return new ImagePart(Path.of(arg.substring(0, colon)), arg.substring(colon + 1));
        }
        throw new IOException(arg + ": no such file");
    }
}
