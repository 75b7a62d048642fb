"""seqrec: session-based recommender models and apps (GRU4Rec, CoSeRNN) on seqrec_ext's ops.

Layering (SPEC 1): this package imports `seqrec_ext`; `seqrec_ext` never imports this one.

So far: `seqrec.data` (GRU4Rec's TSV format, sessions, time split), `seqrec.batching`
(session-parallel mini-batches), `seqrec.metrics` (Recall@k / MRR@k in three tie modes). The
GRU4Rec trainer, command line and CoSeRNN arrive with their issues.
"""
import seqrec_ext

__version__ = seqrec_ext.__version__
