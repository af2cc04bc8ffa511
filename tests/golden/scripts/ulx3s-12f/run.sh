#!/usr/bin/env bash
# Re-run this build by hand (yowasp-<tool> also works).
set -euo pipefail
cd "$(dirname "$0")"
yosys -q -l yosys.log -s synth.ys
nextpnr-ecp5 --12k --package CABGA381 --speed 6 --json insitu_shell.json --lpf insitu_shell.lpf --textcfg insitu_shell.config --report report.json --freq 50 --seed 1 --timing-allow-fail --router router2 -q -l nextpnr.log
ecppack --compress insitu_shell.config insitu_shell.bit
