"""``python -m awing ...`` (also what ``torchrun -m awing train ...`` runs)."""

import sys

from awing.cli import main

sys.exit(main())
