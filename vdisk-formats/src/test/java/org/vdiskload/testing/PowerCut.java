package org.vdiskload.testing;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.Images;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Power-loss ordering. A SIGKILL ({@link CrashTest}) keeps the page cache, so it cannot show a missing flush
 * between data and the metadata pointing at it; a power cut can. Here the writer runs in this process with
 * every write, flush and truncation of the image file recorded in order ({@link RecordingChannel}); then for
 * cut points in that record, a copy of the image is made of what the disk may hold after a power cut there:
 * everything up to the last completed flush before the cut, and of what came after it, for each 4 KiB page
 * independently, the writes to that page up to a random point (the page cache writes pages back in any
 * order, each as it was at some instant), with the file length as after a random number of those events.
 */
public final class PowerCut {
    private PowerCut() {}

    private static final int PAGE = 4096;

    /** The image file as it was before the writer opened it, and everything done to it since. */
    public record Recording(Path before, List<RecordingChannel.Event> events) {}

    @FunctionalInterface
    public interface Writer {
        /** Writes to the image; {@code log.mark(k)} after a flush that made operations up to k durable. */
        void run(RecordingChannel.Log log) throws Exception;
    }

    /** The cut points per format: a few in the quick run, 50 in the long one (as {@link CrashTest#kills}). */
    public static int cuts() {
        return CrashTest.kills();
    }

    /** Runs {@code writer} with every write to {@code image} recorded. One recording at a time: the hook is global. */
    public static synchronized Recording record(Path image, Writer writer) throws Exception {
        Path before = image.resolveSibling(image.getFileName() + ".before");
        Files.copy(image, before, StandardCopyOption.REPLACE_EXISTING);
        Path watched = image.toAbsolutePath().normalize();
        RecordingChannel.Log log = new RecordingChannel.Log();
        ImageFile.channelOpener((path, writable) -> {
            FileChannel ch = writable ? FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : FileChannel.open(path, StandardOpenOption.READ);
            return path.toAbsolutePath().normalize().equals(watched) ? new RecordingChannel(ch, log) : ch;
        });
        try {
            writer.run(log);
        } finally {
            ImageFile.channelOpener(null);
        }
        return new Recording(before, log.events());
    }

    /**
     * Writes to {@code out} what a power cut just before event {@code cut} may leave on the disk.
     * @return the last mark before the cut (the last operation a completed flush covered), -1 if none
     */
    public static int replay(Recording r, int cut, Random rnd, Path out) throws IOException {
        Files.copy(r.before(), out, StandardCopyOption.REPLACE_EXISTING);
        List<RecordingChannel.Event> events = r.events();
        int lastFlush = -1;
        int mark = -1;
        for (int i = 0; i < cut; i++) {
            switch (events.get(i).kind()) {
                case FLUSH -> lastFlush = i;
                case MARK -> mark = events.get(i).mark();
                default -> { }
            }
        }
        try (FileChannel ch = FileChannel.open(out, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (int i = 0; i <= lastFlush; i++) {
                RecordingChannel.Event e = events.get(i);
                if (e.kind() == RecordingChannel.Event.Kind.WRITE) write(ch, e.bytes(), 0, e.bytes().length, e.pos());
                else if (e.kind() == RecordingChannel.Event.Kind.TRUNCATE) ch.truncate(e.size());
            }
            // After the flush: writes (a truncation zeroes what it cuts), page by page, and the lengths the file had.
            List<long[]> sizes = new ArrayList<>();
            List<RecordingChannel.Event> unflushed = new ArrayList<>();
            long size = ch.size();
            sizes.add(new long[] {size});
            for (int i = lastFlush + 1; i < cut; i++) {
                RecordingChannel.Event e = events.get(i);
                if (e.kind() == RecordingChannel.Event.Kind.WRITE) {
                    unflushed.add(e);
                    size = Math.max(size, e.end());
                } else if (e.kind() == RecordingChannel.Event.Kind.TRUNCATE) {
                    if (e.size() < size) unflushed.add(new RecordingChannel.Event(RecordingChannel.Event.Kind.WRITE, e.size(),
                            new byte[(int) (size - e.size())], 0, 0));
                    size = e.size();
                } else {
                    continue;
                }
                sizes.add(new long[] {size});
            }
            Map<Long, List<RecordingChannel.Event>> byPage = new TreeMap<>();
            for (RecordingChannel.Event e : unflushed) {
                for (long p = e.pos() / PAGE; p * PAGE < e.end(); p++) byPage.computeIfAbsent(p, x -> new ArrayList<>()).add(e);
            }
            for (Map.Entry<Long, List<RecordingChannel.Event>> page : byPage.entrySet()) {
                long from = page.getKey() * PAGE;
                List<RecordingChannel.Event> writes = page.getValue();
                int persisted = rnd.nextInt(writes.size() + 1);
                for (RecordingChannel.Event e : writes.subList(0, persisted)) {
                    long start = Math.max(from, e.pos());
                    long end = Math.min(from + PAGE, e.end());
                    write(ch, e.bytes(), (int) (start - e.pos()), (int) (end - start), start);
                }
            }
            long length = sizes.get(rnd.nextInt(sizes.size()))[0];
            if (ch.size() > length) ch.truncate(length);
            else if (ch.size() < length) write(ch, new byte[1], 0, 1, length - 1);
        }
        return mark;
    }

    private static void write(FileChannel ch, byte[] bytes, int from, int length, long pos) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes, from, length);
        while (b.hasRemaining()) ch.write(b, pos + b.position() - from);
    }

    /**
     * {@link CrashPlan} operations (flushed every fourth, as {@link CrashWriter} does) into a fresh image, then
     * {@link #cuts} power cuts, each checked as a kill is ({@link CrashTest#verify}).
     * @param base where on the disk the operations' blocks start
     */
    public static void run(Path dir, String format, CrashTest.ImageFactory fresh, long seed, long base, boolean metadataLog)
            throws Exception {
        run(dir, format, fresh, seed, base, false, (image, plan, flushed, what) ->
                CrashTest.verify(image, format, plan, flushed, what, metadataLog, true));
    }

    /**
     * {@link #run} with metadata write-through: the power cuts must leave what they leave without it (every
     * flushed operation), and at each cut point a kill (every write before it kept, as the page cache keeps
     * them) must leave every operation that had returned.
     */
    public static void runWriteThrough(Path dir, String format, CrashTest.ImageFactory fresh, long seed, boolean metadataLog)
            throws Exception {
        run(dir, format, fresh, seed, 0, true, (image, plan, flushed, what) ->
                CrashTest.verify(image, format, plan, flushed, what, metadataLog, true));
    }

    /** {@link #run} for images qemu cannot open (a differencing VHDX): see {@link CrashTest#runWithoutQemu}. */
    public static void runWithoutQemu(Path dir, String format, CrashTest.ImageFactory fresh, long seed) throws Exception {
        run(dir, format, fresh, seed, 0, false, (image, plan, flushed, what) ->
                CrashTest.verify(image, format, plan, flushed, what, false, false));
    }

    /**
     * {@link #run} for a format neither qemu nor we can check (qcow): the image must open, every flushed
     * operation read back, and qemu must read the whole disk exactly as we do.
     */
    public static void runUnchecked(Path dir, String format, CrashTest.ImageFactory fresh, long seed) throws Exception {
        run(dir, format, fresh, seed, 0, false, (image, plan, flushed, what) -> {
            byte[] ours;
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format))) {
                for (int k = 0; k <= flushed; k++) {
                    CrashPlan.Op op = plan.op(k, d.size());
                    ByteBuffer got = ByteBuffer.allocate(op.length());
                    d.read(got, op.pos());
                    org.junit.jupiter.api.Assertions.assertArrayEquals(op.zero() ? new byte[op.length()] : op.data(), got.array(),
                            what + ": operation " + k + " (flushed) lost");
                }
                ours = WriteTorture.readAll(d);
            }
            Path raw = image.resolveSibling(image.getFileName() + ".raw");
            Tools.check("qemu-img", "convert", "-f", format, "-O", "raw", image.toString(), raw.toString());
            org.junit.jupiter.api.Assertions.assertArrayEquals(ours, Files.readAllBytes(raw), what + ": qemu reads it differently");
            Files.delete(raw);
        });
    }

    @FunctionalInterface
    private interface Verifier {
        void verify(Path image, CrashPlan plan, int flushed, String what) throws Exception;
    }

    private static void run(Path dir, String format, CrashTest.ImageFactory fresh, long seed, long base, boolean writeThrough,
                            Verifier verifier) throws Exception {
        Path image = dir.resolve("power." + format);
        fresh.make(image);
        CrashPlan plan = new CrashPlan(seed, base);
        Recording r = record(image, log -> {
            try (DiskImage d = Images.open(image, OpenOptions.DEFAULTS.withFormat(format).withWritable(true))) {
                if (writeThrough) d.setMetadataWriteThrough(true);
                int ops = Math.min(48, plan.blocks(d.size()));
                for (int k = 0; k < ops; k++) {
                    CrashPlan.Op op = plan.op(k, d.size());
                    if (op.zero()) d.writeZeroes(op.pos(), op.length(), op.mayUnmap());
                    else d.write(ByteBuffer.wrap(op.data()), op.pos());
                    log.returned(k);
                    if (k % 4 == 3) {
                        d.flush();
                        log.mark(k);
                    }
                }
            }
        });
        Random rnd = new Random(seed);
        int n = r.events().size();
        for (int i = 0; i < cuts(); i++) {
            int cut = 1 + rnd.nextInt(n);
            Path out = dir.resolve("cut-" + i + "." + format);
            int flushed = replay(r, cut, rnd, out);
            verifier.verify(out, plan, flushed, format + " power cut " + i + " before event " + cut + " of " + n + " (seed " + seed + ")");
            Files.delete(out);
            if (!writeThrough) continue;
            int returned = replayKill(r, cut, out);
            verifier.verify(out, plan, returned, format + " write-through kill " + i + " before event " + cut + " of " + n
                    + " (seed " + seed + ")");
            Files.delete(out);
        }
    }

    /**
     * Writes to {@code out} what a kill just before event {@code cut} leaves (the page cache keeps every write).
     * @return the last operation that had returned, -1 if none
     */
    static int replayKill(Recording r, int cut, Path out) throws IOException {
        Files.copy(r.before(), out, StandardCopyOption.REPLACE_EXISTING);
        int returned = -1;
        try (FileChannel ch = FileChannel.open(out, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            for (RecordingChannel.Event e : r.events().subList(0, cut)) {
                switch (e.kind()) {
                    case WRITE -> write(ch, e.bytes(), 0, e.bytes().length, e.pos());
                    case TRUNCATE -> ch.truncate(e.size());
                    case RETURNED -> returned = e.mark();
                    default -> { }
                }
            }
        }
        return returned;
    }
}
