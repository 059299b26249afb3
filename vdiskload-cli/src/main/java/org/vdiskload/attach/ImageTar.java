package org.vdiskload.attach;

import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.text.Printable;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code vdiskload tar}: an image's file system as a tar stream. The image is attached (read-only, or by
 * default with a throwaway overlay so that a journal needing recovery replays there), and the file system
 * is mounted read-only in a mount namespace of its own, by {@code unshare --mount} around mount and GNU tar:
 * no other process sees the mount, and it ends with that namespace's last process however that process ends.
 * The attachment is detached again whatever happens (a shutdown hook covers SIGINT and SIGTERM).
 *
 * <p>GNU tar writes the archive ({@code --numeric-owner --xattrs --acls}, POSIX format): it already reads
 * every kind of file, hard links, device nodes, xattrs and POSIX ACLs from a mounted tree, which a Java tar
 * writer would need native calls for (lgetxattr, the ACL xattrs' binary form, major/minor numbers).
 */
public final class ImageTar {
    /**
     * Runs in the new namespace: $1 type, $2 device, $3 mount point, $4 archive ("-": stdout). The namespace's
     * mounts are private (unshare's default), so the mount propagates nowhere.
     */
    private static final String SCRIPT = "mount -t \"$1\" -o ro -- \"$2\" \"$3\" && exec tar --create --file=\"$4\" --directory=\"$3\""
            + " --format=posix --numeric-owner --xattrs --acls --one-file-system .";

    private final ImageMounter mounter;

    public ImageTar(ImageMounter mounter) {
        this.mounter = mounter;
    }

    /**
     * Writes the tree of {@code image}'s file system {@code part} (null: the default choice) to {@code out}
     * (null: this process's standard output); tar's warnings go to {@code warnings}. A failure removes a
     * half-written {@code out}.
     */
    public void write(Path image, String part, String backend, boolean readOnly, ReferencePolicy refs, Path out, PrintWriter warnings)
            throws IOException, InterruptedException {
        ImageMounter.Attached at = mounter.attach(image, part, backend, readOnly, !readOnly, refs,
                "leave out -r (tar then attaches with a throwaway overlay the recovery goes to; the image is not written)");
        Run run = new Run(at.attachment());
        Thread hook = new Thread(run::cleanUpQuietly, "vdiskload-tar-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            run.tar(image, at.fileSystem(), out, warnings);
        } catch (IOException | RuntimeException e) {
            // a half-written archive; never what -f /dev/stdout or /dev/null name
            if (out != null && Files.isRegularFile(out, LinkOption.NOFOLLOW_LINKS)) Files.delete(out);
            run.cleanUp(e);
            throw e;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs (or ran) cleanUp itself
            }
        }
        run.cleanUp(null);
    }

    /** One run's child process, mount point and attachment, undone once (by the command or by the shutdown hook). */
    private final class Run {
        private final Attachment attachment;
        private Process child;
        private Path mountPoint;
        private boolean cleaned;

        Run(Attachment attachment) {
            this.attachment = attachment;
        }

        void tar(Path image, FileSystemCandidate fs, Path out, PrintWriter warnings) throws IOException, InterruptedException {
            synchronized (this) {
                if (cleaned) throw new IOException(image + ": interrupted");
                mountPoint = Files.createTempDirectory("vdiskload-tar");
                ProcessBuilder pb = new ProcessBuilder("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", SCRIPT,
                        "vdiskload-tar", fs.type(), fs.device(), mountPoint.toString(), out == null ? "-" : out.toAbsolutePath().toString())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                        .redirectOutput(ProcessBuilder.Redirect.INHERIT);
                child = pb.start();
            }
            String stderr = new String(child.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
            List<String> lines = stderr.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
            int exit = child.waitFor();
            if (exit != 0) {
                String why = Exec.lastWord(stderr).isEmpty() ? "exit " + exit : Printable.of(Exec.lastWord(stderr));
                throw new IOException(image + ": reading " + fs.what() + " (" + fs.type() + ") failed: " + why);
            }
            for (String l : lines) warnings.println("vdiskload: warning: " + Printable.of(l));
            warnings.flush();
        }

        /** The shutdown hook's: on SIGINT or SIGTERM there is nobody left to tell of a problem. */
        void cleanUpQuietly() {
            try {
                cleanUp(new IOException("interrupted"));
            } catch (IOException | InterruptedException ignored) {
                // the JVM is going
            }
        }

        /**
         * Stops tar (its namespace, and so its mount, ends with it), removes the mount point, detaches; a
         * problem joins {@code failure} as suppressed, or is thrown when there was none.
         */
        synchronized void cleanUp(Exception failure) throws IOException, InterruptedException {
            if (cleaned) return;
            cleaned = true;
            if (child != null && child.isAlive()) {
                child.destroy();
                child.waitFor();
            }
            if (mountPoint != null) Files.deleteIfExists(mountPoint);
            if (failure == null) mounter.detach(attachment);
            else mounter.release(attachment, failure);
        }
    }
}
