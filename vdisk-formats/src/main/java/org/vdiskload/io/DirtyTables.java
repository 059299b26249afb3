package org.vdiskload.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Metadata tables (qcow2 and qcow L2 tables, VMDK grain tables) read through a bounded LRU cache and changed
 * in memory, as qemu's qcow2-cache.c keeps them: a changed table stays pinned here, out of the LRU's reach, so
 * no reader ever reads the older copy in the file, until a commit ({@link WriteBack}) has written its changed
 * entries ({@link #take}, then {@link #written}). Changes and commits happen under the format's lock;
 * lookups need none.
 *
 * @param <T> a table in memory: an array of its entries
 */
public final class DirtyTables<T> {

    /** How a table's entries are laid out in the file. */
    public interface Codec<T> {
        /** Bytes of one entry in the file. */
        int entryBytes();

        /** Puts entries {@code [from, to)} of {@code table} into {@code out}, as the file holds them. */
        void encode(T table, int from, int to, ByteBuffer out);
    }

    /**
     * One table's changed entries, copied for a commit: {@code bytes} belong at {@code offset} in the file.
     * {@code tag} is what the format gave {@link #changed} (a grain directory index, for the redundant copy).
     */
    public record Copy(long tableOffset, long offset, int tag, ByteBuffer bytes, Object pin, int version) {}

    /** Tables of big-endian 64-bit entries (qcow2 and qcow L2 tables). */
    public static final Codec<long[]> BIG_ENDIAN_LONGS = new Codec<>() {
        @Override
        public int entryBytes() {
            return 8;
        }

        @Override
        public void encode(long[] table, int from, int to, ByteBuffer out) {
            out.order(ByteOrder.BIG_ENDIAN).asLongBuffer().put(table, from, to - from);
            out.position(out.position() + (to - from) * 8);
        }
    };

    /** Tables of little-endian 32-bit entries (VMDK grain tables). */
    public static final Codec<int[]> LITTLE_ENDIAN_INTS = new Codec<>() {
        @Override
        public int entryBytes() {
            return 4;
        }

        @Override
        public void encode(int[] table, int from, int to, ByteBuffer out) {
            out.order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().put(table, from, to - from);
            out.position(out.position() + (to - from) * 4);
        }
    };

    private final LruCache<T> clean;
    private final Codec<T> codec;
    private final Map<Long, Pinned<T>> pinned = new ConcurrentHashMap<>();

    /** @param maxClean tables the LRU keeps besides the pinned ones */
    public DirtyTables(int maxClean, Codec<T> codec) {
        this.clean = new LruCache<>(maxClean);
        this.codec = codec;
    }

    /** The table at {@code offset}, as last changed: pinned, cached, or loaded. */
    public T get(long offset, LruCache.Loader<T> loader) throws IOException {
        Pinned<T> p = pinned.get(offset);
        return p != null ? p.table : clean.get(offset, loader);
    }

    /** The table at {@code offset} if it has unwritten changes, else null. */
    public T pinned(long offset) {
        Pinned<T> p = pinned.get(offset);
        return p == null ? null : p.table;
    }

    /** A table the caller just wrote whole at {@code offset} (or read): nothing of it waits. */
    public void put(long offset, T table) {
        clean.put(offset, table);
    }

    public void invalidate(long offset) {
        clean.invalidate(offset);
    }

    /**
     * Entries {@code [from, to)} of {@code table}, the table at {@code offset}, changed in memory (under the
     * format's lock): it is pinned until a commit has written them.
     */
    public void changed(long offset, T table, int tag, int from, int to) {
        Pinned<T> p = pinned.computeIfAbsent(offset, o -> new Pinned<>(table, tag));
        p.from = Math.min(p.from, from);
        p.to = Math.max(p.to, to);
        p.version++;
    }

    /** Tables with unwritten changes (each pinned in memory until written). */
    public int pinnedCount() {
        return pinned.size();
    }

    /** Copies of every pinned table's changed entries, for a commit (under the format's lock). */
    public List<Copy> take() {
        List<Copy> copies = new ArrayList<>(pinned.size());
        int entry = codec.entryBytes();
        for (Map.Entry<Long, Pinned<T>> e : pinned.entrySet()) {
            Pinned<T> p = e.getValue();
            ByteBuffer b = ByteBuffer.allocate((p.to - p.from) * entry);
            codec.encode(p.table, p.from, p.to, b);
            copies.add(new Copy(e.getKey(), e.getKey() + (long) p.from * entry, p.tag, b.flip(), p, p.version));
        }
        return copies;
    }

    /** Writes copies made by {@link #take} where they belong (the data they point to is on the disk). */
    public static void write(ImageFile file, List<Copy> copies) throws IOException {
        for (Copy c : copies) file.writeFully(c.bytes().duplicate(), c.offset());
    }

    /**
     * After {@code copies} were written (under the format's lock): a table not changed since its copy leaves
     * the pinned set, back into the LRU first, so no reader ever re-reads an older copy from the file.
     */
    public void written(List<Copy> copies) {
        for (Copy c : copies) {
            Pinned<?> p = (Pinned<?>) c.pin();
            if (p.version != c.version() || pinned.get(c.tableOffset()) != p) continue;
            @SuppressWarnings("unchecked")
            T table = (T) p.table;
            clean.put(c.tableOffset(), table);
            pinned.remove(c.tableOffset());
        }
    }

    /** Forgets every clean table (their places changed); pinned ones stay. */
    public void clearClean() {
        clean.clear();
    }

    /** A table with the range of its entries changed since it was last written whole or in part. */
    private static final class Pinned<T> {
        final T table;
        final int tag;
        int from = Integer.MAX_VALUE, to;
        int version;

        Pinned(T table, int tag) {
            this.table = table;
            this.tag = tag;
        }
    }
}
