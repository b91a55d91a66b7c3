"""``python -m provabgs_sbi.cli``."""
import sys

from provabgs_sbi.cli.main import main

sys.exit(main())
