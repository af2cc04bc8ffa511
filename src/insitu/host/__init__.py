"""The host side of the board shell: send inputs over the serial port, read and check the answers."""
