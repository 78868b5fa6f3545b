"""The interview config contract: bad values and unknown keys give one clear message."""

from __future__ import annotations

import json

import pytest

from agent.config import ConfigError, InterviewConfig, parse_config

BASE = {"candidate_name": "김지원", "role": "백엔드 개발자"}


def test_defaults_follow_the_contract():
    config = parse_config(BASE)
    assert (config.language, config.interview_type, config.seniority) == ("ko", "mixed", "junior")
    assert (config.difficulty, config.persona, config.duration_minutes) == ("normal", "neutral", 15)
    assert config.avatar == "woman"
    assert config.resume_text is None and config.job_description is None


def test_json_text_round_trips():
    config = parse_config(json.dumps({**BASE, "language": "en", "duration_minutes": 30}))
    assert parse_config(config.to_json()) == config


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"candidate_name": ""}, "candidate_name"),
        ({"candidate_name": "x" * 81}, "candidate_name"),
        ({"candidate_name": 5}, "candidate_name"),
        ({"role": ""}, "role"),
        ({"role": "x" * 121}, "role"),
        ({"language": "fr"}, "language"),
        ({"interview_type": "case"}, "interview_type"),
        ({"seniority": "principal"}, "seniority"),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"persona": "rude"}, "persona"),
        ({"duration_minutes": 2}, "duration_minutes"),
        ({"duration_minutes": 91}, "duration_minutes"),
        ({"duration_minutes": "15"}, "duration_minutes"),
        ({"duration_minutes": 15.5}, "duration_minutes"),
        ({"duration_minutes": True}, "duration_minutes"),
        ({"avatar": "../../etc/passwd"}, "avatar"),
        ({"avatar": ""}, "avatar"),
        ({"resume_text": "x" * 20_001}, "resume_text"),
        ({"job_description": "x" * 20_001}, "job_description"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        parse_config({**BASE, **changes})
    message = str(info.value)
    assert f"'{field}'" in message
    assert "\n" not in message


@pytest.mark.parametrize("field", ["candidate_name", "role"])
def test_required_fields(field):
    data = dict(BASE)
    del data[field]
    with pytest.raises(ConfigError, match=f"'{field}' is required"):
        parse_config(data)


@pytest.mark.parametrize("raw", [None, "", "   ", "not json", "[1, 2]", "42"])
def test_not_an_object(raw):
    with pytest.raises(ConfigError):
        parse_config(raw)


def test_limits_are_inclusive():
    config = parse_config(
        {**BASE, "candidate_name": "x" * 80, "duration_minutes": 90, "resume_text": "r" * 20_000}
    )
    assert isinstance(config, InterviewConfig)
    assert parse_config({**BASE, "duration_minutes": 3}).duration_minutes == 3
