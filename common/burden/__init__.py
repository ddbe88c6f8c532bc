"""Model-zoo burden (seed 003, convnet-burden): parameter memory, feature memory,
MACs/FLOPs of every torchvision classification, segmentation and detection model
and of any timm model, at its typical input size and across input sizes.

    python -m common burden [--models all|classification|segmentation|detection|timm|NAME ...]
                            [--scales 0.5,1,1.5,2,2.5,3] [--batch 128] [--out results] ...

request -> measure -> record -> render, one module each:

- ``common.registry.zoo``: the catalogue (names, typical sizes, builders);
- ``profile``: the request (``BurdenRequest``) and the figures of one model
  (``analysis``: one analysed forward; ``peak_held``: the measured CPU peak in a worker);
- ``store``: the records, ``results/records/any/burden/<stem>.json`` (kind ``burden``)
  and ``results/records/any/burden-run/all.json`` (the last full run);
- ``common.render.burden``: ``results/burden.md``, ``results/burden/<stem>.md`` and
  ``results/burden/figs/<stem>.png``, from the records only (``seed003``: the
  comparison with convnet-burden's published figures; ``fmt``: number formats);
- ``cli``: the command line.

How each number is obtained:

- Parameters, MACs/FLOPs and feature memory come from ``common.measure.structure.analyze`` (one
  forward under a dispatch mode; FLOPs from ``torch.utils.flop_counter``'s formulas,
  MACs = FLOPs / 2; feature memory in convnet-burden's convention: every op output
  counted once at 4 bytes, no reuse, in-place ops and views add nothing). The forward
  runs on the ``meta`` device: no memory, no compute. Models whose construction reads
  tensor values (RegNet) are built on the CPU and moved to ``meta``. Models whose
  forward needs real values (detection: ``nonzero``, NMS) are run for real on the CPU,
  random weights seeded, input ``torch.rand`` seeded, so their data-dependent parts
  (proposals kept, detections) are those of that one random model.
- Per-layer costs are each module's *self* cost (ops charged to the innermost module
  running them); the rows add up to the totals.
- "peak held" is measured, not estimated (``peak_held``). Models above the
  ``--peak-max-gmacs`` / ``--peak-max-mib`` limits are not run and say so.

This file imports nothing, so that ``common.render.burden`` can import the modules it
needs without importing the command line.
"""
