"""The student-statistics scoring engine: pure torch + transformers, no queue and no database.

from workers.scoring import Candidate, Scorer, get_student
student = get_student("path/to/checkpoint")          # loaded once per process
scores = Scorer(student, template="plain").score([Candidate("Add 2 and 3.", "5")])   # or "cherry", "reflection", ...
"""

from core.scores import DEFAULT_RANK_CLIP, SCORING_VERSION, Candidate, CandidateScores, StudentIdentity
from workers.scoring.engine import Scorer, ScoringStats
from workers.scoring.student import Student, get_student

__all__ = [
    "DEFAULT_RANK_CLIP",
    "SCORING_VERSION",
    "Candidate",
    "CandidateScores",
    "Scorer",
    "ScoringStats",
    "Student",
    "StudentIdentity",
    "get_student",
]
