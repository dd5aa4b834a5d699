"""ADS1299 over SPI: registers, the SPI/DRDY seams, a register-level emulator, vectorised frame
decoding, the chip driver and the `Ads1299FrontEnd`. See docs/ads1299.md and hw/ads1299.md."""
