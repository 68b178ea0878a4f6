"""The learner profile: what the tutor may know about a reader to adapt explanations to them.

Every field is an optional closed choice rather than free text, for two reasons: the API validates
`PUT /profile` against this model (a typo is a 422, not a silently useless value), and the profile is
pasted into prompts, where enum values cannot smuggle instructions in. Only `preferred_language` is a
string, constrained to a BCP-47-shaped tag. The field names are part of the HTTP contract.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# language[-Script][-REGION]: "ur", "en-GB", "zh-Hans", "pa-Arab-PK", "es-419". Private-use and
# extension subtags are deliberately refused: nothing downstream would know what to do with them.
LANGUAGE_TAG = re.compile(
    r"^(?P<lang>[a-z]{2,3})(?:-(?P<script>[A-Z][a-z]{3}))?(?:-(?P<region>[A-Z]{2}|\d{3}))?$"
)


def normalize_language_tag(value: str) -> str:
    """Canonical casing (`EN-us` → `en-US`, `zh-hans` → `zh-Hans`), then the pattern check.

    BCP-47 tags are case-insensitive, so clients sending `en-us` are right; storing one spelling
    keeps cache keys and language lookups consistent.
    """
    parts = value.strip().replace("_", "-").split("-")
    canonical = [parts[0].lower()]
    for part in parts[1:]:
        canonical.append(part.title() if len(part) == 4 and part.isalpha() else part.upper())
    tag = "-".join(canonical)
    if not LANGUAGE_TAG.match(tag):
        # The value is not repeated: validation messages go back to the client (api.errors).
        raise ValueError("not a BCP-47 language tag like 'ur', 'en-GB' or 'zh-Hans'")
    return tag


LanguageCode = Annotated[str, Field(min_length=2, max_length=16), AfterValidator(normalize_language_tag)]


class AgeRange(StrEnum):
    """The learner's age band."""

    UNDER_18 = "under_18"
    AGE_18_24 = "18_24"
    AGE_25_34 = "25_34"
    AGE_35_44 = "35_44"
    AGE_45_PLUS = "45_plus"


class EducationLevel(StrEnum):
    """The learner's highest education."""

    HIGH_SCHOOL = "high_school"
    UNDERGRADUATE = "undergraduate"
    GRADUATE = "graduate"  # master's level
    DOCTORATE = "doctorate"
    SELF_TAUGHT = "self_taught"


class Experience(StrEnum):
    """Shared scale for software (programming) and hardware (electronics, mechanics, robots)."""

    NONE = "none"
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class PrimaryGoal(StrEnum):
    """What the learner wants from the book."""

    COURSEWORK = "coursework"  # passing a course or exam
    CAREER = "career"  # getting or changing a job
    RESEARCH = "research"
    BUILD_PROJECT = "build_project"  # a robot, product or startup of their own
    HOBBY = "hobby"
    TEACHING = "teaching"


class LearningMode(StrEnum):
    """How the learner prefers to learn."""

    VISUAL = "visual"  # diagrams, tables, structure
    READING = "reading"  # careful prose
    HANDS_ON = "hands_on"  # steps to try, exercises
    MIXED = "mixed"


class LearningSpeed(StrEnum):
    """The pace the learner wants."""

    SLOW = "slow"
    MODERATE = "moderate"
    FAST = "fast"


class TimePerWeek(StrEnum):
    """Hours a week the learner can give."""

    UNDER_2H = "under_2h"
    FROM_2_TO_5H = "2_5h"
    FROM_5_TO_10H = "5_10h"
    OVER_10H = "over_10h"


# Wording for prompts where the raw value would read badly; other values print with spaces for '_'.
_VALUE_TEXT = {
    "under_18": "under 18",
    "18_24": "18–24",
    "25_34": "25–34",
    "35_44": "35–44",
    "45_plus": "45 or older",
    "graduate": "graduate (master's level)",
    "self_taught": "self-taught",
    "none": "no experience",
    "coursework": "pass a course or exam",
    "career": "career (get or change a job)",
    "build_project": "build their own robot or product",
    "hands_on": "hands-on (learns by doing)",
    "visual": "visual (diagrams, tables, structure)",
    "reading": "reading (careful prose)",
    "under_2h": "under 2 hours",
    "2_5h": "2–5 hours",
    "5_10h": "5–10 hours",
    "over_10h": "more than 10 hours",
}

_FIELD_TEXT = {
    "age_range": "Age",
    "education_level": "Education",
    "software_background": "Software / programming experience",
    "hardware_background": "Hardware / electronics / robotics experience",
    "primary_goal": "Main goal",
    "learning_mode": "Preferred learning style",
    "learning_speed": "Learning pace",
    "time_per_week": "Study time per week",
    "preferred_language": "Preferred language",
}


class LearnerProfile(BaseModel):
    """A reader's self-description; every field optional, unknown fields refused."""

    model_config = ConfigDict(extra="forbid")

    age_range: AgeRange | None = None
    education_level: EducationLevel | None = None
    software_background: Experience | None = Field(default=None, description="Programming experience.")
    hardware_background: Experience | None = Field(
        default=None, description="Electronics, mechanics or robotics experience."
    )
    primary_goal: PrimaryGoal | None = None
    learning_mode: LearningMode | None = None
    learning_speed: LearningSpeed | None = None
    time_per_week: TimePerWeek | None = None
    preferred_language: LanguageCode | None = Field(
        default=None, description="BCP-47 tag, e.g. 'ur', 'en', 'zh-Hans'.", examples=["ur"]
    )

    @property
    def is_empty(self) -> bool:
        """True when nothing is set (a property, so a forgotten `()` cannot read as always-true)."""
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def describe(self, *, exclude: Collection[str] = ()) -> str:
        """One `- Label: value` line per field that is set, for a prompt; '' when nothing is set.

        `exclude` drops fields a prompt must not see: personalization leaves out `preferred_language`,
        which would otherwise tempt the model to translate while it should only adapt.
        """
        lines = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None or name in exclude:
                continue
            raw = str(value.value if isinstance(value, StrEnum) else value)
            lines.append(f"- {_FIELD_TEXT[name]}: {_VALUE_TEXT.get(raw, raw.replace('_', ' '))}")
        return "\n".join(lines)
