"""End to end in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``, installed by
``./run setup-browser``) drives the MUSHRA pages of a test prepared on the embedded default codec; the server
is killed (SIGKILL) and restarted half-way; the stored ratings and the results table are checked."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (./run setup-browser)",
    ),
    pytest.mark.timeout(300),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
# the screenshot in docs/listening.md: HEARTCODEC_LISTEN_SCREENSHOT=docs/listening_trial.png pytest ...
SCREENSHOT = os.environ.get("HEARTCODEC_LISTEN_SCREENSHOT")
# the score each condition gets, by name (the test reads the manifest to know which stimulus is which)
PLAN = {"hidden_reference": 100, "anchor_3500hz": 10, "anchor_7000hz": 35, "minicodec": 60, "untrained": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(test: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "heartcodec_lab.cli.listen", "serve", f"test={test}", f"port={port}"]
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"server did not start: {log.read_text()}")


def _browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=900,760",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(driver, condition, what: str, seconds: float = 30):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # a page may be replaced between finding an element and reading it (navigation): look again
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, seconds, ignored_exceptions=ignored).until(condition, message=what)


def _rate_trial(driver, manifest, shot: Path | None = None) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1", "trial page ready")
    heading = driver.find_element(By.TAG_NAME, "h1").text
    next_button = driver.find_element(By.ID, "next")
    assert not next_button.is_enabled(), "Next must wait until every slider is moved"
    # the stimuli load and play: the reference, then a condition (switching keeps the position)
    buttons = driver.find_elements(By.CSS_SELECTOR, "button.play")
    assert len(buttons) == 1 + len(PLAN)
    _wait(
        driver,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('audio')].every(a => a.readyState >= 1 && a.duration > 1)"
        ),
        "every stimulus loaded (a WAV the browser decodes)",
    )
    buttons[0].click()
    _wait(driver, lambda d: d.execute_script("return !document.querySelectorAll('audio')[0].paused"), "reference plays")
    buttons[1].click()
    playing = driver.execute_script("return [...document.querySelectorAll('audio')].map(a => !a.paused)")
    assert playing[:2] == [False, True] and not any(playing[2:])
    sliders = driver.find_elements(By.CSS_SELECTOR, "input[type=range]")
    for i, slider in enumerate(sliders):
        condition = manifest.stimuli[slider.get_attribute("data-stimulus")].condition
        score = PLAN[condition]
        keys = Keys.END if score == 100 else Keys.HOME + Keys.ARROW_RIGHT * score
        slider.send_keys(keys)
        assert int(slider.get_attribute("value")) == score
        assert next_button.is_enabled() == (i == len(sliders) - 1)
    if shot is not None:
        driver.save_screenshot(str(shot))
    next_button.click()
    return heading


def test_mushra_in_chromium_with_a_killed_server(tmp_path):
    from heartcodec_lab.cli.listen import main
    from heartcodec_lab.data.synth import write_synth_folder
    from heartcodec_lab.listen import Manifest
    from heartcodec_lab.listen.store import read_ratings

    write_synth_folder(tmp_path / "clips", n=2, seconds=2.0, seed=3)
    test = tmp_path / "test"
    # the embedded default: the miniature codec with its true encoder, and an untrained projection
    main(
        [
            "prepare",
            f"reference={tmp_path / 'clips'}",
            f"output={test}",
            "excerpt.seconds=1.5",
            "threads=1",
            "detokenize.num_steps=2",
            "title=Browser test",
            "encoders=[{name: minicodec, kind: minicodec, path: null},{name: untrained, kind: projection, path: null}]",
        ]
    )
    manifest = Manifest(test)
    assert manifest.conditions == ["hidden_reference", "anchor_3500hz", "anchor_7000hz", "minicodec", "untrained"]
    port, log = _free_port(), tmp_path / "server.log"
    server = _serve(test, port, log)
    driver = _browser()
    try:
        from selenium.webdriver.common.by import By

        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "name").send_keys("browser")
        driver.find_element(By.ID, "start").click()
        shot = tmp_path / "trial.png"
        assert _rate_trial(driver, manifest, shot) == "Trial 1 of 2"
        _wait(driver, lambda d: "Trial 2 of 2" in d.title, "the second trial after Next")
        # kill the server with the first trial stored, restart it, reload: the listener continues at trial 2
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        server = _serve(test, port, log)
        driver.refresh()
        assert _rate_trial(driver, manifest) == "Trial 2 of 2"
        _wait(driver, lambda d: d.find_elements(By.ID, "done"), "the thank-you page")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if SCREENSHOT:
            shutil.copy(shot, SCREENSHOT)
    finally:
        driver.quit()
        server.kill()
        server.wait(timeout=30)

    ratings, listeners = read_ratings(test / "ratings.sqlite")
    assert [entry["name"] for entry in listeners] == ["browser"]
    assert len(ratings) == 2 * len(PLAN)
    assert {(r["trial"], r["condition"]) for r in ratings} == {(t, c) for t in ("t001", "t002") for c in PLAN}
    assert all(r["score"] == PLAN[r["condition"]] for r in ratings)

    main(["results", f"test={test}"])
    table = (test / "results" / "results.md").read_text()
    assert "1 listener(s), 1 kept" in table
    assert "| hidden_reference | 2 | 100.0 |" in table and "| untrained | 2 | 5.0 |" in table
    assert (test / "results" / "plots" / "conditions.png").is_file()
