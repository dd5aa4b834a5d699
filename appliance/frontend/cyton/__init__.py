"""OpenBCI Cyton over its serial dongle: packet protocol, driver, FrontEnd, pty emulator."""
