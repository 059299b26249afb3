package org.vdiskload.io;

import java.io.IOException;

/**
 * Metadata a writer changes in memory and writes to its file later, after the data it points to is on the
 * disk (what qemu's qcow2 cache does with its flush dependency): the qcow2 and qcow L2 tables, VMDK grain
 * tables, the VDI block map. A power cut must never leave an entry pointing at data that is not on the disk,
 * so every commit is: flush the data, then write the entries. One flush orders every change made before it.
 *
 * <p>Commits are group commits. A format makes its changes under its own lock and counts each with
 * {@link #changed}; a commit takes a copy of what waits ({@link Source#take}) under that lock, then flushes
 * and writes outside it, so other writers go on changing meanwhile and the next commit covers all of them
 * at once. Commits run one at a time: a caller waiting for its change to be committed returns as soon as one
 * that started after its change has finished, whoever ran it; of the callers still waiting then, one runs
 * the next commit for all.
 *
 * <p>By default a writer commits only at its flush, or when too much waits ({@link #commit}). With
 * {@linkplain #setWriteThrough write-through} every write, zero-write and discard commits before it returns
 * ({@link #settle}): a killed process (the page cache survives) then loses no completed write, at the cost of
 * a flush per allocating write, shared by the writers that wait at once.
 */
public final class WriteBack {

    /** What the format has waiting, copied under its lock. */
    public interface Source {
        /**
         * A copy of the metadata changed and not yet written, or null if none waits. Called under the format's
         * lock. {@code all}: also what may wait longer (refcount drops, which a second flush must precede).
         */
        Batch take(boolean all) throws IOException;
    }

    /** One commit's metadata. */
    public interface Batch {
        /** Writes the copied metadata; the data it points to is on the disk. Not under the format's lock. */
        void write() throws IOException;

        /** Under the format's lock, once written: tables with no change since the copy may leave memory. */
        default void written() throws IOException {
        }

        /** Whether {@link #durable} has work, which a flush after {@link #write} must precede. */
        default boolean hasFollowUp() {
            return false;
        }

        /** Under the format's lock, after a flush of what {@link #write} wrote (refcount drops). */
        default void durable() throws IOException {
        }
    }

    /** Runs an action under the format's lock, whatever kind of lock it is. */
    @FunctionalInterface
    public interface FormatLock {
        void run(IoAction action) throws IOException;

        static FormatLock of(Object monitor) {
            return action -> {
                synchronized (monitor) {
                    action.run();
                }
            };
        }

        static FormatLock of(java.util.concurrent.locks.Lock lock) {
            return action -> {
                lock.lock();
                try {
                    action.run();
                } finally {
                    lock.unlock();
                }
            };
        }
    }

    private final ImageFile file;
    private final FormatLock formatLock;
    private final Source source;
    /** Guards {@link #running} and {@link #committed}; waiters wait on it. */
    private final Object state = new Object();
    /** Whether a commit (or an {@link #exclusive} action) runs. */
    private boolean running;
    /** Changes counted so far; written under the format's lock. */
    private volatile long changes;
    /** The changes up to which a commit has finished. */
    private volatile long committed;
    private volatile boolean writeThrough;

    /**
     * @param formatLock the lock under which the format changes its metadata and {@code source} copies it
     */
    public WriteBack(ImageFile file, FormatLock formatLock, Source source) {
        this.file = file;
        this.formatLock = formatLock;
        this.source = source;
    }

    /** Counts a change to the metadata (under the format's lock). */
    public void changed() {
        changes++;
    }

    /**
     * The changes counted so far: read under the format's lock right after an operation's changes, the
     * ticket {@link #settle} waits for.
     */
    public long ticket() {
        return changes;
    }

    public boolean writeThrough() {
        return writeThrough;
    }

    /** Switches write-through on or off; switching it on commits what waits first. Not under the format's lock. */
    public void setWriteThrough(boolean on) throws IOException {
        if (on) commit(false);
        writeThrough = on;
    }

    /**
     * After a write, zero-write or discard, outside the format's lock: with write-through, returns once every
     * change up to {@code ticket} (0: none) is written. Otherwise nothing.
     */
    public void settle(long ticket) throws IOException {
        if (writeThrough && ticket > committed) commit(ticket, false);
    }

    /**
     * Commits every change made so far, at a flush or when too much waits; {@code all} as in
     * {@link Source#take}. Not under the format's lock.
     */
    public void commit(boolean all) throws IOException {
        commit(Long.MAX_VALUE, all);
    }

    /** Waits until {@code ticket} is committed, running the commit itself when none runs. */
    private void commit(long ticket, boolean all) throws IOException {
        if (!start(ticket)) return;
        long upTo = -1;
        try {
            upTo = runCommit(all);
        } finally {
            finish(upTo);
        }
    }

    /** Takes the turn to commit, or returns false once a commit covering {@code ticket} has finished. */
    private boolean start(long ticket) throws IOException {
        synchronized (state) {
            while (committed < ticket) {
                if (!running) {
                    running = true;
                    return true;
                }
                try {
                    state.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while waiting for a metadata commit");
                }
            }
            return false;
        }
    }

    /** Ends the turn: {@code upTo} changes are committed (-1: the commit failed), and the waiters look again. */
    private void finish(long upTo) {
        synchronized (state) {
            if (upTo > committed) committed = upTo;
            running = false;
            state.notifyAll();
        }
    }

    /** One commit: copy under the format's lock, flush, write, and what follows. Returns the changes it covers. */
    private long runCommit(boolean all) throws IOException {
        long[] upTo = new long[1];
        Batch[] taken = new Batch[1];
        formatLock.run(() -> {
            upTo[0] = changes;
            taken[0] = source.take(all);
        });
        Batch batch = taken[0];
        if (batch != null) {
            file.force(false);
            batch.write();
            formatLock.run(batch::written);
            if (batch.hasFollowUp()) {
                file.force(false);
                formatLock.run(batch::durable);
            }
        }
        return upTo[0];
    }

    /**
     * For a format that writes something itself in the commit order (a VDI block given back): commits
     * everything, then runs {@code action} before any other commit starts. Not under the format's lock.
     */
    public void exclusive(IoAction action) throws IOException {
        start(Long.MAX_VALUE);
        long upTo = -1;
        try {
            upTo = runCommit(true);
            action.run();
        } finally {
            finish(upTo);
        }
    }

    @FunctionalInterface
    public interface IoAction {
        void run() throws IOException;
    }
}
