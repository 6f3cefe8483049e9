"""Pictures of topologies (matplotlib), shared by the dashboard artifacts and reports.

This package imports only :mod:`skipsearch.topology` (and matplotlib): no torch, no database.
"""

from skipsearch.viz._topology import EDGE_COLORS, MIN_FILE_WIDTH_IN, draw_topology

__all__ = ["EDGE_COLORS", "MIN_FILE_WIDTH_IN", "draw_topology"]
