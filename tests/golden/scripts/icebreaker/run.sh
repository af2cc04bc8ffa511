#!/usr/bin/env bash
# Re-run this build by hand (yowasp-<tool> also works).
set -euo pipefail
cd "$(dirname "$0")"
yosys -q -l yosys.log -s synth.ys
nextpnr-ice40 --up5k --package sg48 --json insitu_shell.json --pcf insitu_shell.pcf --asc insitu_shell.asc --report report.json --freq 50 --seed 1 --timing-allow-fail --router router2 -q -l nextpnr.log
icepack insitu_shell.asc insitu_shell.bin
