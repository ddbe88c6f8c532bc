"""Measuring: clocks and the protocol loop, execution modes, per-unit hooks, training steps,
memory, cost (one meta pass), single layers and the device's limits."""
