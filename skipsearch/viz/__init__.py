"""Pictures of topologies (matplotlib), shared by the dashboard artifacts and reports.

This package imports only :mod:`skipsearch.topology` (and matplotlib): no torch, no database.
"""

from skipsearch.viz._topology import MIN_FILE_WIDTH_IN, draw_topology, edge_color

__all__ = ["MIN_FILE_WIDTH_IN", "draw_topology", "edge_color"]
