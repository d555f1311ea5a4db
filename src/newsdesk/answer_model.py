"""The learned answer model: the probability that a candidate sentence answers the question.

A logistic regression over `newsdesk.features.FEATURES`, trained by `bench/train_answerer.py`
on the SQuAD calibration half and part of the RealTime QA questions only, and shipped as the
small JSON file `answer_model.json` next to this module. The answer abstains when even the best
sentence's probability is below the file's threshold, which the training script chose on the
training questions (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
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

    def probabilities(self, x: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
        if not len(x):
            return np.zeros(0, dtype=np.float64)
        if features != self.features:
            columns = [features.index(f) for f in self.features]
            x = x[:, columns]
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
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
                "abstain": self.abstain, "about": self.about}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerModel:
        return cls(tuple(data["features"]), np.array(data["mean"], dtype=np.float64),
                   np.array(data["scale"], dtype=np.float64), np.array(data["coef"], dtype=np.float64),
                   float(data["intercept"]), float(data["threshold"]), dict(data.get("about", {})),
                   data.get("abstain"))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")


@cache
def shipped_model() -> AnswerModel:
    return AnswerModel.from_dict(json.loads(MODEL_FILE.read_text()))
