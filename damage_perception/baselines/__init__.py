"""Other people's models run side by side with ours, for comparison only (never on the product path):
anomalib's PatchCore on our crops and weights (``anomalib_patchcore``, ``anomalib_comparison``)."""
