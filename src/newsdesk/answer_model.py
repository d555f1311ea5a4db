"""The learned answer model: the probability that a candidate sentence answers the question.

A logistic regression over `newsdesk.features.FEATURES` and gradient-boosted trees over the same
features, their log-odds weighed by the trees' `share` (0.3 shipped): the regression carries the features' plain trends, the trees
what depends on several at once (an answer-type match counts for more when the sentence also
covers the question). Trained by `bench/train_answerer.py` on the SQuAD calibration half and part
of the RealTime QA questions only, and shipped as the JSON file `answer_model.json` next to this
module; the trees are evaluated here with numpy, so answering needs no scikit-learn. Whether to
answer at all is a separate, question-level regression (`answerable`) with its calibrated
threshold, chosen on the training questions (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = Path(__file__).with_name("answer_model.json")


@dataclass(frozen=True)
class AnswerModel:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    about: dict[str, Any] = field(default_factory=dict)
    # The abstention model over `newsdesk.answer.QUESTION_FEATURES`: mean, scale, coef, intercept.
    abstain: dict[str, Any] | None = None
    trees: Trees | None = None  # None: the regression alone

    def probabilities(self, x: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
        if not len(x):
            return np.zeros(0, dtype=np.float64)
        if features != self.features:
            columns = [features.index(f) for f in self.features]
            x = x[:, columns]
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        if self.trees is not None:
            z = (1.0 - self.trees.share) * z + self.trees.share * self.trees.log_odds(x)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def answerable(self, q: np.ndarray) -> float:
        """The probability that a question with these question features is answered by the corpus."""
        a = self.abstain
        if a is None:
            return float(1.0 / (1.0 + np.exp(-q[0])))  # no abstention model: the best sentence's probability
        z = float(((q - np.array(a["mean"])) / np.array(a["scale"])) @ np.array(a["coef"]) + a["intercept"])
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "threshold": self.threshold,
                "abstain": self.abstain, "trees": self.trees.to_dict() if self.trees else None, "about": self.about}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerModel:
        return cls(tuple(data["features"]), np.array(data["mean"], dtype=np.float64),
                   np.array(data["scale"], dtype=np.float64), np.array(data["coef"], dtype=np.float64),
                   float(data["intercept"]), float(data["threshold"]), dict(data.get("about", {})),
                   data.get("abstain"), Trees.from_dict(data["trees"]) if data.get("trees") else None)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted regression trees, as arrays: tree t's node i tests x[feature] <= threshold
    and goes to left or right; a leaf points to itself and holds its value. The columns of x are
    the model's `features`."""

    feature: np.ndarray  # (trees, nodes) int
    threshold: np.ndarray  # (trees, nodes) float
    left: np.ndarray  # (trees, nodes) int
    right: np.ndarray  # (trees, nodes) int
    value: np.ndarray  # (trees, nodes) float
    depth: int
    baseline: float
    share: float  # of the trees' log-odds in the model's, against the regression's

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        """All trees at once, one level per step: (rows,) log-odds. Nodes are indexed in the
        flattened arrays (tree t's node i is t * width + i), which numpy gathers about 2.5 times
        faster than pairs of indices (0.75 against 2 ms for 70 sentences)."""
        feature, threshold, left, right, value = self._flat
        trees, width = self.feature.shape
        x = np.ascontiguousarray(x, dtype=np.float64)
        cells = (np.arange(len(x)) * x.shape[1])[None, :]  # where each row starts in x.ravel()
        node = np.repeat(np.arange(trees) * width, len(x)).reshape(trees, len(x))
        flat_x = x.ravel()
        for _ in range(self.depth):
            goes_left = flat_x[cells + feature[node]] <= threshold[node]
            node = np.where(goes_left, left[node], right[node])
        return self.baseline + value[node].sum(axis=0)

    @cached_property
    def _flat(self) -> tuple[np.ndarray, ...]:
        trees, width = self.feature.shape
        offset = (np.arange(trees) * width)[:, None]
        return (self.feature.ravel(), self.threshold.ravel(), (self.left + offset).ravel(),
                (self.right + offset).ravel(), self.value.ravel())

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature.tolist(), "threshold": self.threshold.tolist(), "left": self.left.tolist(),
                "right": self.right.tolist(), "value": self.value.tolist(), "depth": self.depth,
                "baseline": self.baseline, "share": self.share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trees:
        return cls(np.array(data["feature"], dtype=np.int64), np.array(data["threshold"], dtype=np.float64),
                   np.array(data["left"], dtype=np.int64), np.array(data["right"], dtype=np.int64),
                   np.array(data["value"], dtype=np.float64), int(data["depth"]), float(data["baseline"]),
                   float(data["share"]))


@cache
def shipped_model() -> AnswerModel:
    return AnswerModel.from_dict(json.loads(MODEL_FILE.read_text()))
