#!/usr/bin/env python3
"""Clicks through the real console (`clarity serve`) in headless Chromium (Selenium/WebDriver).

Run by tests/browser/run.sh (which installs Chromium, chromedriver and Selenium); by hand:

    python tests/browser/test_console.py --clarity target/debug/clarity \
        [--chromium /usr/bin/chromium] [--chromedriver /usr/bin/chromedriver] \
        [--screenshots docs/img]

It writes three tiny sweeps with `clarity run` into a temporary root (4 builtin phantoms, 64 px,
blur x noise, one seed: 24 runs each; the third with a two-fill `[probe]`), starts `clarity
serve --root ROOT --addr 127.0.0.1:0`, reads the URL it prints, and walks the console like a
user: the sweep list, a sweep page (headline, curves), the case browser (filter to flipped runs,
open one: both images, both answers, changed words highlighted), the compare view, the
counterfactual console (verdicts per fill, layer toggles, opacity, the region table, another
case), running a probe from a sweep page to the end, a scoped probe from the sweep page's form
(case, cell, grid, top-k) and its per-region table, exporting it into the report, the README's
three clicks (which cases flipped under blur 2), launching a sweep and watching its
progress reach 100% over server-sent events, and cancelling a longer one (which then offers
Resume).

Prints one line per test and closes with `N passed, N failed`; exits 1 if any failed.
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# A small sweep: 4 phantoms x blur {0, 1, 4} x noise {0, 0.1}, one seed = 24 runs (~1 s).
CONFIG = """prompt = "Is there a nodule? Where?"
seeds = {seeds}
output = "{output}"

[cohort]
kind = "builtin"
n = {n}
size = 64
depth = 8
seed = {phantom_seed}

[adapter]
kind = "builtin"

[normalization]
mode = "exact"

[axes]
"gaussian_blur.sigma" = [1, 4]
"gaussian_noise.sigma" = [0.1]

[analysis]
bootstrap_iterations = 50
cliff_threshold = 0.8
"""


# A cheap probe (two fills) for the probed sweep: `clarity run` runs it after the sweep.
PROBE = """
[probe]
fills = ["constant", "mean"]
"""


def write_config(root, name, output, phantom_seed=0, n=4, seeds="[0]", extra=""):
    path = os.path.join(root, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(CONFIG.format(output=output, phantom_seed=phantom_seed, n=n, seeds=seeds) + extra)
    return path


class Console:
    """A `clarity serve` process and a headless Chromium pointed at it."""

    def __init__(self, args, root):
        self.proc = subprocess.Popen(
            [args.clarity, "serve", "--root", root, "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.search(r"on (http://\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"clarity serve printed no URL: {line!r}")
        self.url = m.group(1).rstrip("/")
        opts = webdriver.ChromeOptions()
        opts.binary_location = args.chromium
        for a in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,900",
            "--no-first-run",
            "--disable-extensions",
        ):
            opts.add_argument(a)
        self.driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=opts)
        self.driver.set_page_load_timeout(30)
        self.shots = args.screenshots

    def get(self, path):
        self.driver.get(self.url + path)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, cond, timeout=30, what="condition"):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
            lambda d: cond(), message=f"timed out waiting for {what}"
        )

    def screenshot(self, name):
        if self.shots:
            os.makedirs(self.shots, exist_ok=True)
            # The whole page, not just the viewport (Chrome DevTools Protocol).
            m = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            size = m["cssContentSize"]
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": size["width"],
                             "height": min(size["height"], 2400), "scale": 1},
                },
            )
            with open(os.path.join(self.shots, f"console-{name}.png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.driver.quit()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def image_loaded(c, css):
    return c.driver.execute_script(
        "var i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth > 0;",
        css,
    )


# ---- the tests, in order (launching adds a sweep to the list) ----


def test_sweep_list(c):
    c.get("/")
    links = c.find_all("#sweeps a.sweep")
    names = sorted(a.text for a in links)
    assert names == ["a", "b", "p", "t"], f"sweep list shows {names}"
    c.screenshot("sweeps")


def test_sweep_page_headline_and_curves(c):
    c.get("/")
    next(a for a in c.find_all("#sweeps a.sweep") if a.text == "a").click()
    c.wait(lambda: c.find_all("#headline li"), what="the headline")
    headline = c.find("#headline").text
    assert "ESI" in headline, f"headline: {headline!r}"
    svgs = c.find_all("#curves svg")
    assert svgs, "no curve SVG in #curves"
    assert c.find_all("#flips a.flips"), "no flips-per-cell table"
    c.screenshot("sweep")


def test_case_browser_filter_and_open_a_flipped_run(c):
    c.get("/sweeps/out%2Fa")
    c.find("#all-runs").click()
    c.wait(lambda: c.find_all("#runs tr.run"), what="the runs table")
    total_all = int(c.find("#total").get_attribute("data-total"))
    assert total_all == 24, f"all runs: {total_all}"
    Select(c.find("#f-flipped")).select_by_value("true")
    c.find("#filters button[type=submit]").click()
    c.wait(lambda: "flipped=true" in c.driver.current_url, what="the filtered page")
    total = int(c.find("#total").get_attribute("data-total"))
    rows = c.find_all("#runs tr.run")
    assert 0 < total < total_all, f"flipped runs: {total} of {total_all}"
    assert len(rows) == total and all("flipped" in r.get_attribute("class") for r in rows)
    c.screenshot("runs")
    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()
    c.wait(lambda: c.find_all("#pair"), what="the run page")
    c.wait(lambda: image_loaded(c, "#img-baseline") and image_loaded(c, "#img-perturbed"), what="both images")
    base, pert = c.find("#answer-baseline").text, c.find("#answer-perturbed").text
    assert base and pert and base != pert, f"answers: {base!r} vs {pert!r}"
    assert c.find("#flipped").text == "flipped"
    marks = c.find_all("#just-perturbed mark") + c.find_all("#just-baseline mark")
    assert marks, "no highlighted words in the justifications"
    # Zoom toggles on click.
    img = c.find("#img-perturbed")
    img.click()
    assert "zoomed" in img.get_attribute("class")
    img.click()
    c.screenshot("run")


def test_flip_count_link_opens_those_runs(c):
    c.get("/sweeps/out%2Fa")
    link = next(a for a in c.find_all("#flips a.flips") if a.text != "0")
    want = int(link.text)
    link.click()
    c.wait(lambda: c.find_all("#total"), what="the runs page")
    assert int(c.find("#total").get_attribute("data-total")) == want


def test_compare_two_sweeps(c):
    c.get("/compare")
    Select(c.find("#f-a")).select_by_value("out/a")
    Select(c.find("#f-b")).select_by_value("out/b")
    c.find("#compare-form button[type=submit]").click()
    c.wait(lambda: c.find_all("#compare-summary"), what="the comparison")
    summary = c.find("#compare-summary").text
    assert re.search(r"\d+ cells compared", summary), summary
    cells = c.find_all("#compare-cells tbody tr")
    assert len(cells) == 6, f"{len(cells)} cells (3 blur x 2 noise expected)"
    c.screenshot("compare")


def test_probe_page_layers_and_region_table(c):
    c.get("/sweeps/out%2Fp")
    c.find("#probe-link").click()
    c.wait(lambda: c.find_all("#probe-verdicts tbody tr"), what="the verdict table")
    fills = [r.get_attribute("data-fill") for r in c.find_all("#probe-verdicts tbody tr")]
    assert fills == ["constant", "mean", "all_fills"], fills
    c.wait(lambda: image_loaded(c, "#probe-heatmap") and image_loaded(c, "#probe-plain"),
           what="the overlay and the image under it")
    regions = c.find_all("#probe-regions tbody tr.region")
    assert regions, "no region table"
    assert c.find_all("#probe-regions tr.region.evidence"), "no evidence region row"
    controls = c.find_all("#probe-outlines g.outline.control")
    evidence = c.find_all("#probe-outlines g.outline.evidence")
    assert evidence, "no evidence outline"
    c.screenshot("probe")
    # Toggles: control outlines, evidence outlines, the heatmap; the opacity slider.
    shown = lambda els: [e.is_displayed() for e in els]
    c.find("#t-controls").click()
    assert not any(shown(controls)), "control outlines still shown"
    assert all(shown(evidence)), "evidence outlines hidden with the controls"
    c.find("#t-outlines").click()
    assert not any(shown(evidence)), "evidence outlines still shown"
    c.find("#t-heatmap").click()
    assert not c.find("#probe-heatmap").is_displayed(), "heatmap still shown"
    c.find("#t-heatmap").click()
    c.driver.execute_script(
        "var s = document.getElementById('t-opacity'); s.value = 40;"
        "s.dispatchEvent(new Event('input'));")
    op = c.driver.execute_script("return document.getElementById('probe-heatmap').style.opacity")
    assert float(op) == 0.4, f"opacity {op}"
    assert c.find("#opacity-value").text == "40"
    # Pick another case: its own regions.
    first = c.find("#case-title").text
    other = next(a for a in c.find_all("#probe-cases a.pick") if a.text != first)
    want = other.text
    other.click()
    c.wait(lambda: c.find("#case-title").text == want, what="the other case")
    assert c.find_all("#probe-regions tbody tr.region")


def test_run_probe_from_the_sweep_page(c):
    c.get("/sweeps/out%2Fb")
    assert not c.find_all("#probe-link"), "sweep b has no probe yet"
    c.find("#run-probe").click()
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    assert c.find("#kind").text == "probe"
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the probe to end")
    assert c.find("#status").text == "finished", c.find("#job-error").text
    assert int(c.find("#done").text) > 0, "no probe runs counted"
    link = c.find("#probe-result")
    c.wait(link.is_displayed, what="the link to the probe page")
    link.click()
    c.wait(lambda: c.find_all("#probe-verdicts tbody tr"), what="the new probe's verdicts")
    assert c.find_all("#probe-regions tbody tr.region")


def test_scoped_probe_from_the_form(c):
    """The sweep page's probe form: a case, a blur cell, a 3x3 grid, top 2; the job runs to the
    end and the counterfactual console shows the scope and the per-region table."""
    c.get("/sweeps/out%2Fp")
    form = c.find("#probe-form")
    cases = Select(c.find("#probe-case"))
    case = cases.options[1].get_attribute("value")
    cases.select_by_value(case)
    cells = Select(c.find("#probe-cell"))
    blur = next(o for o in cells.options if "gaussian_blur.sigma=4" in o.text and "noise" not in o.text)
    cell = blur.get_attribute("value")
    cells.select_by_value(cell)
    form.find_element(By.CSS_SELECTOR, "input[name=probe-regions][value=grid]").click()
    for css, v in (("#probe-grid", "3"), ("#probe-topk", "2")):
        c.find(css).clear()
        c.find(css).send_keys(v)
    c.screenshot("probe-form")
    c.find("#probe-launch").click()
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    assert c.find("#kind").text == "probe"
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the probe to end")
    assert c.find("#status").text == "finished", c.find("#job-error").text
    link = c.find("#probe-result")
    c.wait(link.is_displayed, what="the link to the probe page")
    link.click()
    c.wait(lambda: c.find_all("#probe-regions tbody tr.region"), what="the per-region table")
    scope = c.find("#probe-scope-line").text
    assert f"case {case}" in scope and f"cell {cell}" in scope and "3×3 grid" in scope, scope
    heads = [th.text for th in c.find_all("#probe-regions thead th")]
    for h in ("Δanswer", "Δconfidence", "Δdrift", "Evidence vs control"):
        assert h in heads, heads
    rows = c.find_all("#probe-regions tbody tr.region")
    assert len(c.find_all("#probe-regions tbody tr.region td.region-verdict span.verdict")) == len(rows)
    # A 3x3 grid: nine tiles G1..G9 are probed.
    tiles = [r for r in rows if re.fullmatch(r"G\d", r.get_attribute("data-region"))]
    assert len(tiles) == 9, [r.get_attribute("data-region") for r in rows]
    c.wait(lambda: image_loaded(c, "#probe-heatmap") and image_loaded(c, "#probe-plain"),
           what="the overlay and the cell's image")
    c.screenshot("probe-scoped")


def test_export_the_probe_into_the_report(c):
    c.get("/sweeps/out%2Fp/probe")
    c.find("#add-to-report").click()
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    assert c.find("#kind").text == "report"
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the report to end")
    assert c.find("#status").text == "finished", c.find("#job-error").text
    link = c.find("#report-result")
    c.wait(link.is_displayed, what="the link to the report")
    link.click()
    c.wait(lambda: "report.html" in c.driver.current_url, what="the report")
    body = c.find("body").text
    assert "Counterfactual probe" in body, "no probe section in the report"
    assert "Scoped probe: case" in body, "the report does not state the probe's scope"


def test_three_clicks_which_cases_flipped_under_blur_2(c):
    """The README's question in three clicks: the sweep, the flip count of blur 2, one run."""
    c.get("/")
    c.screenshot("three-0")
    next(a for a in c.find_all("#sweeps a.sweep") if a.text == "t").click()  # 1
    c.wait(lambda: c.find_all("#flips a.flips"), what="the flips per cell")
    link = c.find('#flips a.flips[data-axis="gaussian_blur.sigma"][data-value="2"]')
    want = int(link.text)
    assert want > 0, "nothing flipped under blur 2"
    c.screenshot("three-1")
    link.click()  # 2
    c.wait(lambda: c.find_all("#runs tr.run"), what="the flipped runs")
    rows = c.find_all("#runs tr.run")
    assert len(rows) == want and all("flipped" in r.get_attribute("class") for r in rows)
    c.screenshot("three-2")
    rows[0].find_element(By.CSS_SELECTOR, "a.open").click()  # 3
    c.wait(lambda: image_loaded(c, "#img-baseline") and image_loaded(c, "#img-perturbed"), what="both images")
    assert c.find("#answer-perturbed").text != c.find("#answer-baseline").text
    c.screenshot("three-3")


def test_launch_and_watch_progress_to_100(c):
    c.get("/launch")
    c.screenshot("launch")
    Select(c.find("#config")).select_by_value("launch.toml")
    c.find("#start").click()
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the job to end")
    status, pct = c.find("#status").text, c.find("#percent").text
    assert status == "finished", f"status {status}, error {c.find('#job-error').text!r}"
    assert float(pct) == 100, f"percent {pct}"
    assert c.find("#bar").get_attribute("value") == "100"
    assert c.find("#done").text == c.find("#planned").text == "24"
    assert not c.find("#cancel").is_enabled()
    c.screenshot("job")
    c.find("#sweep-link").click()
    c.wait(lambda: c.find_all("#headline li"), what="the launched sweep's page")
    c.get("/")
    assert "launched" in [a.text for a in c.find_all("#sweeps a.sweep")]


def post_config(c, text, save_as):
    c.get("/launch")
    c.find("#toml").send_keys(text)
    c.find("#save-as").send_keys(save_as)
    c.find("#post-start").click()


def test_posted_config_outside_the_root_is_refused(c):
    post_config(c, CONFIG.format(output="../escaped", phantom_seed=0, n=4, seeds="[0]"), "escape.toml")
    c.wait(lambda: c.find("#post-error").text, what="the refusal")
    err = c.find("#post-error").text
    assert "outside the served root" in err, err
    assert "/launch" in c.driver.current_url


def test_posted_config_runs_to_100(c):
    post_config(c, CONFIG.format(output="out/posted", phantom_seed=2, n=4, seeds="[0]"), "posted.toml")
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the job to end")
    assert c.find("#status").text == "finished", c.find("#job-error").text
    assert float(c.find("#percent").text) == 100


def test_launch_a_long_sweep_and_cancel_it(c):
    c.get("/launch")
    Select(c.find("#config")).select_by_value("slow.toml")
    c.find("#start").click()
    c.wait(lambda: "/jobs/" in c.driver.current_url, what="the job page")
    # Progress arrives over SSE: wait for runs to be counted, then cancel.
    c.wait(lambda: c.find("#planned").text not in ("?", "") and int(c.find("#done").text) > 0,
           timeout=60, what="the first runs")
    c.find("#cancel").click()
    c.wait(lambda: c.find("#status").text != "running", timeout=60, what="the job to stop")
    status = c.find("#status").text
    done, planned = int(c.find("#done").text), int(c.find("#planned").text)
    assert status == "cancelled", f"status {status} ({done}/{planned}), error {c.find('#job-error').text!r}"
    assert 0 < done < planned, f"{done} / {planned}"
    # The interrupted sweep offers Resume on its page.
    c.find("#sweep-link").click()
    c.wait(lambda: c.find_all("#title"), what="the cancelled sweep's page")
    assert c.find("#resume").is_displayed(), "no Resume button on an incomplete sweep"


TESTS = [
    test_sweep_list,
    test_sweep_page_headline_and_curves,
    test_case_browser_filter_and_open_a_flipped_run,
    test_flip_count_link_opens_those_runs,
    test_compare_two_sweeps,
    test_probe_page_layers_and_region_table,
    test_run_probe_from_the_sweep_page,
    test_scoped_probe_from_the_form,
    test_export_the_probe_into_the_report,
    test_three_clicks_which_cases_flipped_under_blur_2,
    test_launch_and_watch_progress_to_100,
    test_posted_config_outside_the_root_is_refused,
    test_posted_config_runs_to_100,
    test_launch_a_long_sweep_and_cancel_it,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clarity", required=True, help="the clarity binary")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    ap.add_argument("--screenshots", help="write console-*.png here (e.g. docs/img)")
    ap.add_argument("-k", help="run only tests whose name contains this")
    args = ap.parse_args()
    args.clarity = os.path.abspath(args.clarity)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clarity-browser-") as root:
        for name, out, seed, extra in (("a.toml", "out/a", 0, ""), ("b.toml", "out/b", 7, ""),
                                       ("p.toml", "out/p", 1, PROBE)):
            write_config(root, name, out, seed, extra=extra)
            subprocess.run([args.clarity, "--quiet", "run", name], cwd=root, check=True)
        # The README's three clicks: blur 2 on 16 phantoms (64 runs).
        with open(os.path.join(root, "t.toml"), "w", encoding="utf-8") as f:
            f.write(CONFIG.format(output="out/t", phantom_seed=11, n=16, seeds="[0]")
                    .replace('"gaussian_blur.sigma" = [1, 4]', '"gaussian_blur.sigma" = [2, 4]'))
        subprocess.run([args.clarity, "--quiet", "run", "t.toml"], cwd=root, check=True)
        write_config(root, "launch.toml", "out/launched", 3)
        # Long enough to cancel: 32 phantoms x 6 cells x 8 seeds = 1536 runs.
        write_config(root, "slow.toml", "out/slow", 5, n=32, seeds="[0, 1, 2, 3, 4, 5, 6, 7]")
        c = Console(args, root)
        passed, failed = 0, 0
        try:
            for t in TESTS:
                if args.k and args.k not in t.__name__:
                    continue
                t1 = time.monotonic()
                try:
                    t(c)
                    passed += 1
                    print(f"ok     {t.__name__} ({time.monotonic() - t1:.1f} s)", flush=True)
                except Exception:  # noqa: BLE001 - report every failure, then go on
                    failed += 1
                    print(f"FAILED {t.__name__} at {c.driver.current_url}", flush=True)
                    traceback.print_exc()
        finally:
            c.close()
    print(f"browser tests took {time.monotonic() - t0:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
