"""Procedurally generated, seeded image-to-image translation tasks.

These stand in for the paper's real paired datasets (Cityscapes labels->photo, maps->aerial,
CMP facades, edges->handbags) so that the default run needs no download and every run is
reproducible. Each task draws a random *layout*, renders it twice: once as the structural input
A (flat label colours or an edge drawing) and once as the target B (texture, shading, detail
that follows exactly the same geometry), so a generator can learn A -> B.

``STYLE_TASKS`` stand in for unpaired style transfer (the paper's photo -> Monet, then photo ->
Ukiyo-e): both share one input domain, a photo-like landscape, whose sample i is identical for
every style kind (its generator is keyed by the shared name "photo", see ``sample_rng``); B is
the same landscape as soft pastel strokes (``photo2pastel``) or as flat colours with dark ink
outlines (``photo2outline``). ``generate_unpaired`` gives any kind's A and B without
correspondence (B from an independent layout), for CycleGAN-style training.

Design rules that keep the output bit-identical on every machine:
- all randomness comes from ``numpy.random.Generator.random``/``integers`` (pure bit
  manipulation, no libm), seeded per sample from ``(seed, task_id, index)``;
- rendering uses only IEEE-exact elementwise arithmetic (+, -, *, /, sqrt, floor, comparisons,
  indexing): no transcendental functions (whose libm/SIMD versions differ in the last bit) and
  no reductions (whose summation order can differ between SIMD code paths). Checked: the same
  hash with numpy dispatching AVX-512, AVX2 or only the SSE baseline (max/min reductions are
  exact too; blurs are fixed-order sums of shifted copies).
- a renderer's random draws happen in a fixed order: reordering them (even building a layout's
  fields in another order) changes every later image.

Geometry is expressed in fractions of the image size, so any square size >= 16 works.

Modules: ``draw`` (shared drawing and noise helpers), one per task family (``street``,
``maps``, ``facade``, ``bag``; ``landscape`` + ``style`` for the two style kinds), ``api``
(registry and sampling) and ``datamodule`` (the LightningDataModule). More kinds can be added
by registering a ``PairMaker`` in ``api._PAIR_MAKERS``.
"""

from datamodules.synthetic.api import (
    MIN_SIZE,
    PAIRED_TASKS,
    STYLE_TASKS,
    generate_pairs,
    generate_unpaired,
    make_pair,
    sample_rng,
)
from datamodules.synthetic.datamodule import SyntheticDataModule

__all__ = [
    "MIN_SIZE",
    "PAIRED_TASKS",
    "STYLE_TASKS",
    "SyntheticDataModule",
    "generate_pairs",
    "generate_unpaired",
    "make_pair",
    "sample_rng",
]
