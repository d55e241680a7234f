"""The phantom wing: a procedural CTPA phantom written as RSNA-layout DICOM.

Without the RSNA data (a 900 GB download behind a licence) the course would have nothing to
run on, so this wing draws one: each patient is a 3D chest, cut into axial slices and
written exactly as the RSNA-STR PE challenge ships its data, ``train.csv`` (17 columns) plus
``train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

The phantom, in patient millimetres (x to the patient's left, y posterior, z cranial; z = 0
at the pulmonary bifurcation). A series covers the whole chest, about 300 mm from the lung
apices to the liver dome, in 5 mm slices (60 slices; a shorter series covers less, about
the hila):

* body: an ellipse of subcutaneous fat (about -100 HU) around soft tissue (40 HU), lying on
  the scanner table; sternum, spine (vertebral bodies and discs, canal, posterior arch) and
  ribs sloping down towards the front, so their sections move from slice to slice (bone
  300-900 HU);
* lungs (about -850 HU, denser at the back) with trachea and bronchi, the heart (contrast in
  the right ventricle, less in the left), liver and spleen domes in the lowest slices, the
  aorta and a dense superior vena cava;
* the pulmonary arteries (250-400 HU): a trunk, the two main arteries and a tree of lobar,
  segmental and subsegmental branches grown at random inside each lung.  Every vessel is a
  3D tube rendered by distance to its axis, so its sections move and merge continuously
  along z, and each slice averages two sub-slices (partial volume, also at branchings);
* emboli in positive patients (:mod:`.emboli`): one to four low-density (25-65 HU)
  capsules inside arteries, central or stuck to the wall, anywhere along the tree: a few
  long central clots, mostly lobar, segmental and subsegmental ones spanning one to a few
  slices.  ``pe_present_on_image`` is computed from what was rendered: a slice is positive
  when its pixels at least half filled by clot (after partial volume) cover at least
  ``MIN_DEFECT_MM2``.  Clots are redrawn until 5-30 % of a positive series' slices are
  positive (13 % on average, as in RSNA's exams), so the thesis profile (259 patients x 60
  slices, 79 positive) has 4.2 % positive slices like Dataset1 (thesis 4.1.1), and a rule
  that copies the nearest annotated slice's label, looking at no image, is far from
  perfect;
* look-alikes, in negatives and positives alike: lymph nodes (soft-tissue blobs touching an
  artery from outside), contrast-mixing (flow) artefacts inside arteries (blurred, 100-200
  HU), streaks from the dense vena cava, respiratory motion ghosts, patient-specific noise.

``difficulty`` in [0, 1] moves emboli from big central clots in the trunk and main arteries only
(0, the demo's phantom) to small
clots down to segmental arteries with more, darker look-alikes and more noise (1).  The
default was tuned on generator 1.0 (short scans, large central clots) so that a ResNet18
trained for a minute on 64x64 gray images of the demo profile classified slices well at
sampling rate 9/10 but left uncertain cases at 1/4 (see ``DEFAULT_DIFFICULTY``); generator
2.0's clots are smaller and rarer, so the task is harder at the same difficulty.

Modules, in the order of the work: :mod:`.vessels` (3D tubes), :mod:`.paint` (drawing
capsules on the render grid), :mod:`.emboli` (clots and the labels they give),
:mod:`.anatomy` (the plan of one patient), :mod:`.body` (the static body),
:mod:`.render` (the slices, their stored values and masks, the labels), :mod:`.writer`
(DICOM files and ``train.csv`` rows), :mod:`.masks` (each slice's clot mask, written beside
the DICOM: positive exactly when non-empty), :mod:`.synthetic` (``generate``, the command line).

Everything is drawn from ``numpy.random.SeedSequence([seed, patient])``: the same seed gives
byte-identical files whatever the number of worker processes, on one machine. Across CPUs a
few stored values may differ by one (numpy's vectorised exp/sin differ in the last bit), so
the demo phantom's manifest checks its pixels within a tolerance (see
:mod:`pe_utils.data.fingerprint`), and UIDs and labels exactly.  Every file carries a fake,
realistic-looking identity (name, ID, birth date, institution, study date) so that the
de-identification of the pipeline is exercised on every run.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "synthetic": ("generate", "GENERATOR_VERSION"),
    "render": ("make_patient", "render_patient", "RenderedPatient"),
    "anatomy": ("plan_patient", "PatientPlan"),
    "emboli": ("clot_area", "positive_bounds"),
    "writer": ("RSNA_COLUMNS", "EXAM_COLUMNS"),
    "masks": ("clot_masks", "SeriesMasks"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
