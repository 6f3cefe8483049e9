"""Pictures of topologies (matplotlib), shared by the dashboard artifacts and reports.

This package imports only :mod:`skipsearch.topology` (and matplotlib): no torch, no database.
"""

from skipsearch.viz._topology import EDGE_COLORS, draw_topology

__all__ = ["EDGE_COLORS", "draw_topology"]
