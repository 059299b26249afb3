package org.vdiskload.attach;

import org.vdiskload.text.Printable;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Which file system of an image {@code IMAGE:PART} means: PART a partition number, else a GPT partition name,
 * else a file-system label, else a file-system UUID (the first of these kinds that matches decides). Without
 * PART: the only file system, else the one partition GPT marks as root for this machine's architecture
 * (Discoverable Partitions Specification), else an error listing the candidates so the user can pick.
 */
public final class FileSystemChooser {
    /** GPT "root partition" type per {@code os.arch}: the Discoverable Partitions Specification's GUIDs. */
    private static final Map<String, String> ROOT_TYPES = Map.of(
            "amd64", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
            "x86_64", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
            "aarch64", "b921b045-1df0-41c3-af44-4c6f280d3fae",
            "x86", "44479540-f297-41b2-9af7-d131d5f0458a",
            "i386", "44479540-f297-41b2-9af7-d131d5f0458a");

    private FileSystemChooser() {}

    /** The GPT root type of this machine's architecture, or "" where the table above has none. */
    public static String rootType() {
        return ROOT_TYPES.getOrDefault(System.getProperty("os.arch"), "");
    }

    /**
     * The candidate {@code part} names (null: the default choice) among {@code all}; an error naming
     * {@code image} and listing the candidates when there is no single one.
     */
    public static FileSystemCandidate choose(String image, List<FileSystemCandidate> all, String part, String rootType) throws IOException {
        List<FileSystemCandidate> withFs = all.stream().filter(FileSystemCandidate::hasFileSystem).toList();
        if (part == null) {
            if (withFs.size() == 1) return withFs.get(0);
            if (withFs.isEmpty()) throw new IOException(image + ": no file system found (blkid recognizes none" + listing(", partitions: ", all) + ")");
            List<FileSystemCandidate> roots = withFs.stream().filter(c -> !rootType.isEmpty() && c.partitionType().equals(rootType)).toList();
            if (roots.size() == 1) return roots.get(0);
            throw new IOException(image + ": " + withFs.size() + " file systems and no single GPT root partition; name one as "
                    + image + ":PART (a number, GPT name, label or UUID):" + listing(" ", withFs));
        }
        if (part.matches("[0-9]{1,6}")) {
            int n = Integer.parseInt(part);
            Optional<FileSystemCandidate> c = all.stream().filter(x -> !x.wholeDisk() && x.number() == n).findFirst();
            if (c.isEmpty()) throw new IOException(image + ": no partition " + n + listing("; partitions: ", all));
            return withFileSystem(image, c.get());
        }
        List<Predicate<FileSystemCandidate>> kinds = List.of(
                c -> c.partitionName().equals(part),
                c -> c.label().equals(part),
                c -> c.uuid().equalsIgnoreCase(part));
        for (Predicate<FileSystemCandidate> kind : kinds) {
            List<FileSystemCandidate> hits = all.stream().filter(kind).toList();
            if (hits.size() == 1) return withFileSystem(image, hits.get(0));
            if (hits.size() > 1) {
                throw new IOException(image + ": \"" + Printable.of(part) + "\" names " + hits.size() + " partitions; pick one by number:" + listing(" ", hits));
            }
        }
        throw new IOException(image + ": no partition number, GPT name, label or UUID \"" + Printable.of(part) + "\"" + listing("; candidates: ", all));
    }

    private static FileSystemCandidate withFileSystem(String image, FileSystemCandidate c) throws IOException {
        if (!c.hasFileSystem()) throw new IOException(image + ": " + c.what() + " holds no file system blkid recognizes");
        return c;
    }

    private static String listing(String prefix, List<FileSystemCandidate> list) {
        if (list.isEmpty()) return "";
        StringBuilder b = new StringBuilder(prefix);
        for (int i = 0; i < list.size(); i++) b.append(i == 0 ? "" : "; ").append(list.get(i).describe());
        return b.toString();
    }
}
