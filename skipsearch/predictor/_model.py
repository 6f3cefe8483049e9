"""The graph regressor: GINE message passing (GIN with edge features), sum + mean pooling, an MLP head
that also reads graph-level features (a topology's probe scores) when it is given some.

An :class:`Ensemble` of independently initialised regressors gives a mean prediction and, from
their disagreement, an uncertainty that the sampler uses to explore.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GINEConv, global_add_pool, global_mean_pool

from skipsearch.nn import training_mode
from skipsearch.predictor._graphs import EDGE_FEATURES, NODE_FEATURES


class GraphRegressor(nn.Module):
    """Predicts ``outputs`` values (standardised targets) of a batch of topology graphs."""

    def __init__(
        self, outputs: int = 1, hidden: int = 64, layers: int = 3, dropout: float = 0.1, graph_features: int = 0
    ) -> None:
        super().__init__()
        self.graph_features = graph_features
        self.embed = nn.Linear(NODE_FEATURES, hidden)
        self.convs = nn.ModuleList(
            GINEConv(
                nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)),
                edge_dim=EDGE_FEATURES,
                train_eps=True,
            )
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.head = nn.Sequential(
            nn.Linear(2 * hidden + graph_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, outputs)
        )

    def forward(self, batch: Batch) -> torch.Tensor:
        h = torch.relu(self.embed(batch.x))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = h + torch.relu(norm(conv(h, batch.edge_index, batch.edge_attr)))  # residual: deep stacks stay stable
        pooled = torch.cat([global_add_pool(h, batch.batch) / 8, global_mean_pool(h, batch.batch)], dim=1)
        if self.graph_features:  # graph-level inputs (probe scores) join the pooled graph embedding
            pooled = torch.cat([pooled, batch.g], dim=1)
        return self.head(pooled)


class Ensemble(nn.Module):
    """Several regressors; :meth:`predict` returns their mean and standard deviation."""

    def __init__(self, members: int = 4, outputs: int = 1, **kwargs: int | float) -> None:
        super().__init__()
        self.members = nn.ModuleList(GraphRegressor(outputs, **kwargs) for _ in range(members))  # type: ignore[arg-type]

    def forward(self, batch: Batch) -> torch.Tensor:
        """Every member's prediction, ``[members, graphs, outputs]``."""
        return torch.stack([m(batch) for m in self.members])

    @torch.no_grad()
    def predict(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation over the members, each ``[graphs, outputs]`` (eval mode)."""
        with training_mode(self, False):
            preds = self(batch)
        return preds.mean(0), preds.std(0, unbiased=False)
