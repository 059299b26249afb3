package org.vdiskload.cli;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ProgressBarTest {
    @Test
    void redrawsEveryWholePercentAndEndsOnceLikeQemuImg() {
        StringWriter s = new StringWriter();
        ProgressBar bar = new ProgressBar(new PrintWriter(s));
        for (double f : new double[] {0, 0.001, 0.0099, 0.01, 0.015, 0.5, 1.0, 1.0, 1.2}) bar.update(f);
        assertEquals("    (0.00/100%)\r    (1.00/100%)\r    (50.00/100%)\r    (100.00/100%)\r" + System.lineSeparator(), s.toString());
    }
}
