"""The simple baselines of session-based recommendation, fitted on the same training sessions and
evaluated on the same targets as GRU4Rec (``seqrec gru4rec baselines``): Pop, S-Pop, AR, SR,
item-kNN, SKNN and V-SKNN. Each is written from its published definition (docs/baselines.md);
rules and similarities are sparse (memory bounded by their non-zeros), and a block of
predictions is scored as one dense (rows, items) block at a time."""

from .evaluate import BASELINES, build_baseline, evaluate_baseline
from .item_knn import ItemKNN
from .popularity import Pop, SessionPop
from .rules import AssociationRules, SequentialRules
from .session_knn import SessionKNN

__all__ = [
    "BASELINES",
    "AssociationRules",
    "ItemKNN",
    "Pop",
    "SequentialRules",
    "SessionKNN",
    "SessionPop",
    "build_baseline",
    "evaluate_baseline",
]
