package org.vdiskload.testing.fuzz;

import java.lang.management.ManagementFactory;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Runs a fuzz target on given inputs outside Jazzer, one line each: the outcome, the time and the bytes
 * allocated. For looking at a finding or a slow seed:
 * {@code java -cp CLASSPATH org.vdiskload.testing.fuzz.Replay CLASS METHOD FILE_OR_DIR...}
 */
public final class Replay {
    private Replay() {}

    public static void main(String[] args) throws Exception {
        Class<?> c = Class.forName(args[0]);
        Method m = c.getDeclaredMethod(args[1], byte[].class);
        m.setAccessible(true);
        var ctor = c.getDeclaredConstructor();
        ctor.setAccessible(true);
        Object target = ctor.newInstance();
        List<Path> inputs = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            Path p = Path.of(args[i]);
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.walk(p)) {
                    s.filter(Files::isRegularFile).sorted().forEach(inputs::add);
                }
            } else {
                inputs.add(p);
            }
        }
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        for (Path p : inputs) {
            byte[] input = Files.readAllBytes(p);
            long a0 = threads.getCurrentThreadAllocatedBytes();
            long t0 = System.nanoTime();
            String outcome = "ok";
            try {
                m.invoke(target, (Object) input);
            } catch (InvocationTargetException e) {
                outcome = "FINDING " + e.getCause();
                if (System.getenv("REPLAY_TRACE") != null) e.getCause().printStackTrace();
            }
            System.out.printf("%8.1f ms %8d KiB  %s  %s%n", (System.nanoTime() - t0) / 1e6,
                    (threads.getCurrentThreadAllocatedBytes() - a0) >> 10, p, outcome);
        }
    }
}
