package org.vdiskload.ops;

/** Receives the fraction of work done, from 0 to 1. */
@FunctionalInterface
public interface Progress {
    Progress NONE = fraction -> { };

    void update(double fraction);
}
