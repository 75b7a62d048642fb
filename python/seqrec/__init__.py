"""seqrec: session-based recommender models and apps (GRU4Rec, CoSeRNN) on seqrec_ext's ops.

This package imports `seqrec_ext`; `seqrec_ext` never imports this one. `seqrec.gru4rec` and
`seqrec.cosernn` hold one model each; beside them the pieces both use: `metrics` (Recall@k and
MRR@k in three tie modes), `checkpoints` (atomic, durable writes), `offline` (the real data that
installs offline, the gap sessioniser), `cli` (the `seqrec` command) and `cli_options`.
"""

import seqrec_ext

__version__ = seqrec_ext.__version__
