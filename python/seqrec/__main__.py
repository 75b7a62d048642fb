"""``python -m seqrec ...``: the ``seqrec`` command (what ``torchrun -m seqrec ...`` runs in each
process)."""

import sys

from seqrec.cli import main

if __name__ == "__main__":
    sys.exit(main())
