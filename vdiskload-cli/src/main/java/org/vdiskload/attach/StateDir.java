package org.vdiskload.attach;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * /run/vdiskload: one JSON record per attachment ({@code NAME.json}, replaced atomically), the serving
 * process's log ({@code NAME.log}) and the backend's mount point ({@code NAME/}). Changes that must not
 * interleave (choosing a free name, removing a record) run under {@link #locked}.
 */
public final class StateDir {
    public static final Path DEFAULT = Path.of("/run/vdiskload");
    private static final ObjectMapper JSON = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Path dir;

    public StateDir(Path dir) {
        this.dir = dir;
    }

    public static StateDir system() {
        return new StateDir(DEFAULT);
    }

    public interface Action<T> {
        T run() throws IOException;
    }

    /** Runs {@code action} holding the directory's lock (an flock on {@code .lock}, shared by every vdiskload process). */
    public <T> T locked(Action<T> action) throws IOException {
        Files.createDirectories(dir);
        try (FileChannel ch = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = ch.lock()) {
            return action.run();
        }
    }

    public Path record(String name) {
        return dir.resolve(name + ".json");
    }

    public Path log(String name) {
        return dir.resolve(name + ".log");
    }

    public Path mountPoint(String name) {
        return dir.resolve(name);
    }

    /** Writes the record whole or not at all: readers never see half of one. */
    public void write(Attachment a) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + a.name() + ".json.tmp");
        JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), a);
        Files.move(tmp, record(a.name()), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    public Optional<Attachment> find(String name) throws IOException {
        try {
            return Optional.of(JSON.readValue(Files.readAllBytes(record(name)), Attachment.class));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new IOException(record(name) + ": unreadable attachment record: " + e.getMessage());
        }
    }

    /** Every recorded attachment, by name. */
    public List<Attachment> list() throws IOException {
        List<Attachment> all = new ArrayList<>();
        if (!Files.isDirectory(dir)) return all;
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, "*.json")) {
            for (Path p : s) {
                String file = p.getFileName().toString();
                find(file.substring(0, file.length() - ".json".length())).ifPresent(all::add);
            }
        }
        all.sort(Comparator.comparing(Attachment::name));
        return all;
    }

    /** Removes the record, the log and the (unmounted) mount point. */
    public void remove(String name) throws IOException {
        Files.deleteIfExists(record(name));
        Files.deleteIfExists(log(name));
        try {
            Files.deleteIfExists(mountPoint(name));
        } catch (java.nio.file.FileSystemException stillMounted) {
            // a mount point still in use stays; the next attach of this name mounts over it again
        }
    }
}
