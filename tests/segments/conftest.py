"""Segment tests import their shared tables (segment_tables.py) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
