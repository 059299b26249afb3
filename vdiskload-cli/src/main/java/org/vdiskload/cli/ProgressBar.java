package org.vdiskload.cli;

import org.vdiskload.ops.Progress;

import java.io.PrintWriter;

/** qemu-img's -p display: "    (42.00/100%)" redrawn in place, at most every whole percent. */
final class ProgressBar implements Progress {
    private final PrintWriter out;
    private int shownHundredths = Integer.MIN_VALUE;

    ProgressBar(PrintWriter out) {
        this.out = out;
    }

    static Progress of(boolean enabled, PrintWriter out) {
        return enabled ? new ProgressBar(out) : Progress.NONE;
    }

    @Override
    public void update(double fraction) {
        int h = (int) Math.floor(Math.min(1.0, fraction) * 10000);
        if (h == shownHundredths || (h / 100 == shownHundredths / 100 && h != 10000)) return;
        shownHundredths = h;
        out.printf("    (%.2f/100%%)\r", h / 100.0);
        if (h == 10000) out.println();
        out.flush();
    }
}
