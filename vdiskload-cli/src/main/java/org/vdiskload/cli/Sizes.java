package org.vdiskload.cli;

import java.math.BigDecimal;
import java.math.MathContext;

/** Human sizes as qemu-img prints them: three significant digits and a binary unit ("1.5 GiB"). */
final class Sizes {
    private static final String[] UNITS = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

    private Sizes() {}

    static String human(long bytes) {
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < UNITS.length - 1) {
            v /= 1024;
            u++;
        }
        String n = new BigDecimal(v).round(new MathContext(3)).stripTrailingZeros().toPlainString();
        return n + " " + UNITS[u];
    }
}
