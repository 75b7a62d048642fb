"""seqrec: session-based recommender models and apps (GRU4Rec, CoSeRNN) on seqrec_ext's ops.

Layering (SPEC 1): this package imports `seqrec_ext`; `seqrec_ext` never imports this one.
The models, data loading, training and evaluation arrive with their issues.
"""
import seqrec_ext

__version__ = seqrec_ext.__version__
