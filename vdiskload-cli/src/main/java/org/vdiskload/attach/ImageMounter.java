package org.vdiskload.attach;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.partition.Partition;
import org.vdiskload.partition.PartitionTable;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@code vdiskload mount} and {@code umount}, and the attaching half of {@code tar}: attach an image (any
 * backend), pick one of its file systems ({@link FileSystemChooser}), mount it; and the way back. Whatever
 * fails after the attach detaches again, so a failed command leaves no device, name or record.
 */
public final class ImageMounter {
    private final StateDir state;
    private final Attacher attacher;
    private final Detacher detacher;

    public ImageMounter(StateDir state, Attacher attacher, Detacher detacher) {
        this.state = state;
        this.attacher = attacher;
        this.detacher = detacher;
    }

    /** An image attached for one of its file systems. */
    public record Attached(Attachment attachment, FileSystemCandidate fileSystem) {}

    /**
     * Attaches {@code image} ({@code readOnly}, or with {@code snapshot}'s throwaway overlay) and picks the
     * file system {@code part} names (null: the default); detaches again when there is none to pick, or when
     * a read-only attachment could not mount it (an ext3/ext4 journal that needs recovery, which writes: the
     * error ends with {@code recoveryAdvice}, how this command gets a writable overlay).
     */
    public Attached attach(Path image, String part, String backend, boolean readOnly, boolean snapshot, ReferencePolicy refs,
                           String recoveryAdvice) throws IOException, InterruptedException {
        PartitionTable table;
        try (DiskImage d = Images.open(image.toAbsolutePath().normalize(), OpenOptions.DEFAULTS.withRefs(refs))) {
            table = PartitionTable.read(d);
        }
        Attachment a = attacher.attach(image, backend, readOnly, snapshot, refs);
        try {
            FileSystemCandidate fs = FileSystemChooser.choose(image.toString(), candidates(a, table), part, FileSystemChooser.rootType());
            if (readOnly) refuseJournalRecovery(image, fs, recoveryAdvice);
            return new Attached(a, fs);
        } catch (IOException | RuntimeException e) {
            release(a, e);
            throw e;
        }
    }

    /**
     * Attaches {@code image} and mounts the file system {@code part} names on {@code dir}: read-only with
     * {@code readOnly}, with {@code options} (mount's -o) added; the attachment records {@code dir}.
     */
    public Attached mount(Path image, String part, Path dir, String backend, boolean readOnly, boolean snapshot, String options,
                          ReferencePolicy refs) throws IOException, InterruptedException {
        Path target = directory(dir);
        Attached at = attach(image, part, backend, readOnly, snapshot, refs, "use --snapshot instead of -r (the recovery then goes to a throwaway overlay)");
        String name = at.attachment().name();
        try {
            String opts = (readOnly ? "ro" : "rw") + (options == null || options.isEmpty() ? "" : "," + options);
            Exec.run(List.of("mount", "-t", at.fileSystem().type(), "-o", opts, at.fileSystem().device(), target.toString()));
        } catch (IOException | RuntimeException e) {
            IOException failure = new IOException(image + ": mounting " + at.fileSystem().what() + " (" + at.fileSystem().type() + ") failed: " + e.getMessage(), e);
            release(at.attachment(), failure);
            throw failure;
        }
        try {
            Attachment recorded = state.locked(() -> {
                Attachment now = state.find(name).orElseThrow(() -> new IOException(image + ": the attachment " + name + " vanished while mounting"));
                Attachment m = now.withMountedOn(target.toString());
                state.write(m);
                return m;
            });
            return new Attached(recorded, at.fileSystem());
        } catch (IOException | RuntimeException e) {
            try {
                Exec.run(List.of("umount", target.toString()));
            } catch (IOException u) {
                e.addSuppressed(u);
            }
            release(at.attachment(), e);
            throw e;
        }
    }

    /** Unmounts {@code dir}, which holds a file system of an attached image, and detaches that image. */
    public void umount(Path dir) throws IOException, InterruptedException {
        Path target = directory(dir);
        Optional<String> mounted = BlockDevices.mountedOn(target);
        if (mounted.isEmpty()) throw new IOException(dir + ": not a mount point");
        Attachment a = null;
        for (Attachment x : state.list()) if (holds(x, mounted.get())) a = x;
        if (a == null) throw new IOException(dir + ": not mounted from an image vdiskload attached (see vdiskload -l)");
        Exec.run(List.of("umount", target.toString()));
        String name = a.name();
        Attachment now = state.locked(() -> {
            Optional<Attachment> r = state.find(name);
            if (r.isPresent() && r.get().mountedOn().equals(target.toString())) {
                state.write(r.get().withMountedOn(""));
                return r.get().withMountedOn("");
            }
            return r.orElse(null);
        });
        if (now != null) detacher.detach(now);
    }

    /** Detaches {@code a} (as its record now stands: it may have been mounted since), if it is still attached. */
    public void detach(Attachment a) throws IOException, InterruptedException {
        Optional<Attachment> now = state.find(a.name());
        if (now.isPresent()) detacher.detach(now.get());
    }

    /** Detaches {@code a} after {@code failure}, which a problem with detaching joins as suppressed. */
    public void release(Attachment a, Exception failure) throws InterruptedException {
        try {
            detach(a);
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }

    /** Whether one of {@code a}'s kernel devices has the block device number {@code majorMinor}. */
    static boolean holds(Attachment a, String majorMinor) throws IOException {
        for (String dev : a.kernelDevices()) if (BlockDevices.majorMinor(dev).filter(majorMinor::equals).isPresent()) return true;
        return false;
    }

    private static Path directory(Path dir) throws IOException {
        try {
            Path real = dir.toRealPath();
            if (!Files.isDirectory(real)) throw new IOException(dir + ": not a directory");
            return real;
        } catch (NoSuchFileException e) {
            throw new IOException(dir + ": no such directory");
        }
    }

    /** Each partition the attachment has (its table's type and name, blkid's findings), or its whole disk where it has none. */
    private static List<FileSystemCandidate> candidates(Attachment a, PartitionTable table) throws IOException {
        List<FileSystemCandidate> all = new ArrayList<>();
        if (a.partitions().isEmpty()) {
            all.add(candidate(0, a.path(), a.size(), "", ""));
            return all;
        }
        for (Attachment.PartitionDevice p : a.partitions()) {
            Partition t = table.partitions().stream().filter(x -> x.number() == p.number()).findFirst().orElse(null);
            long size = p.size() >= 0 ? p.size() : t != null ? t.length() : 0;
            all.add(candidate(p.number(), DeviceNames.DEV + "/" + p.name(), size, t == null ? "" : t.type(), t == null ? "" : t.name()));
        }
        return all;
    }

    private static FileSystemCandidate candidate(int number, String device, long size, String partType, String partName) throws IOException {
        Map<String, String> tags = Blkid.probe(device);
        boolean fs = "filesystem".equals(tags.get("USAGE"));
        return new FileSystemCandidate(number, device, size, partType, partName, fs ? tags.getOrDefault("TYPE", "") : "",
                tags.getOrDefault("LABEL", ""), tags.getOrDefault("UUID", ""));
    }

    /**
     * An ext3/ext4 journal that needs recovery: the kernel replays it at mount, even read-only, which a
     * read-only device refuses (mount's own error says only "cannot mount read-only").
     */
    private static void refuseJournalRecovery(Path image, FileSystemCandidate fs, String advice) throws IOException {
        if (!fs.type().equals("ext3") && !fs.type().equals("ext4")) return;
        for (String line : Exec.run(List.of("dumpe2fs", "-h", fs.device())).split("\n")) {
            if (line.startsWith("Filesystem features:") && List.of(line.split("\\s+")).contains("needs_recovery")) {
                throw new IOException(image + ": " + fs.what() + " (" + fs.type() + ") has a journal that needs recovery, which a read-only"
                        + " attach cannot write: " + advice);
            }
        }
    }
}
