"""report.html in headless Chromium: every section renders, offline, in the interview's language."""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium_flags import CHROMIUM, CHROMIUM_ARGS

from agent.evaluation import generate_report
from agent.transcript import Transcript

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_report_sections_render(
    browser, lang: str, ko_demo: Transcript, en_demo: Transcript, tmp_path: Path
) -> None:
    transcript = ko_demo if lang == "ko" else en_demo
    report = generate_report(transcript, tmp_path)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((tmp_path / "report.html").as_uri())

    assert page.evaluate("document.documentElement.lang") == lang
    for section in ("overall", "strengths", "improvements", "delivery", "questions", "rubric"):
        box = page.locator(f"section#{section}").bounding_box()
        assert box is not None and box["height"] > 40, section
    assert page.locator(".charts svg").count() == 3
    # one line or bar marker per answer in each chart
    assert page.locator(".charts svg").nth(0).locator("circle").count() == len(report.questions)
    assert page.locator(".charts svg").nth(1).locator("rect").count() == len(report.questions)
    assert page.locator("article.q").count() == len(report.questions)
    first_score = report.questions[0].scores
    chips = page.locator("article.q").first.locator(".score")
    assert chips.count() == len(first_score)
    assert page.locator("blockquote").count() >= 3  # evidence in the candidate's words
    assert page.locator("#overall").inner_text().count(f"{report.overall.score:.1f}") >= 1

    if lang == "ko":
        assert "모의 면접 결과 보고서" in page.title()
        assert "개인 정보" in page.locator("section#fair-hiring").inner_text()
    else:
        assert "Mock interview report" in page.title()
        assert page.locator("section#fair-hiring").count() == 1  # age and hometown
    # self-contained: nothing but the file itself was requested
    assert requests == [(tmp_path / "report.html").as_uri()]
    page.screenshot(path=str(tmp_path / f"report_{lang}.png"), full_page=True)
    assert (tmp_path / f"report_{lang}.png").stat().st_size > 10_000
    page.close()
