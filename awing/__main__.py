"""``python -m awing ...`` (also what ``torchrun -m awing train ...`` runs)."""

import sys

from awing.app.cli import main

sys.exit(main())
