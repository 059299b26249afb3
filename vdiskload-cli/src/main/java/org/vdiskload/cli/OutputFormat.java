package org.vdiskload.cli;

/** --output values, as qemu-img spells them. */
enum OutputFormat { human, json }
