package org.vdiskload.image;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Commands running side by side in one JVM (the CLI's tests) each keep their own warnings. */
class WarningsTest {
    @Test
    void eachThreadKeepsItsSinkWhenAnotherSetsOneAfterIt() throws Exception {
        List<String> first = new CopyOnWriteArrayList<>(), second = new CopyOnWriteArrayList<>();
        CyclicBarrier bothSet = new CyclicBarrier(2);
        Thread a = new Thread(() -> warnAfterBoth(first, "a", bothSet));
        Thread b = new Thread(() -> warnAfterBoth(second, "b", bothSet));
        a.start();
        b.start();
        a.join();
        b.join();
        assertEquals(List.of("a"), first);
        assertEquals(List.of("b"), second);
    }

    @Test
    void threadsStartedAfterwardsInheritTheSink() throws Exception {
        List<String> got = new CopyOnWriteArrayList<>();
        Thread command = new Thread(() -> {
            Warnings.to(got::add);
            Thread worker = new Thread(() -> Warnings.warn("from a worker"));
            worker.start();
            try {
                worker.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        command.start();
        command.join();
        assertEquals(List.of("from a worker"), got);
    }

    private static void warnAfterBoth(List<String> sink, String warning, CyclicBarrier bothSet) {
        Warnings.to(sink::add);
        try {
            bothSet.await();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        Warnings.warn(warning);
    }
}
