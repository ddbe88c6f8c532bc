"""results/index.html in headless Chromium, from file:// (Debian's chromium and
chromium-driver, driven by selenium; nothing is downloaded): no console errors; sorting
a column reorders the rows; a filter leaves exactly the rows the CSV says; hovering a
Pareto point names its model; opening a model draws its per-unit chart."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "results" / "index.html"
DEVICE, INPUT = "nvidia-h200", "cityscapes"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -r requirements.txt)")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.get(PAGE.as_uri() + f"#device={DEVICE}&input={INPUT}")
    yield driver
    driver.quit()


def _wait(driver, cond, what: str):
    # A bound on waiting for the page to react, not on how fast it is: the assertion is what appears.
    return WebDriverWait(driver, 30, poll_frequency=0.05).until(lambda d: cond(d), message=what)


def _table(driver) -> list[tuple[str, str]]:
    """(model, mode) of the table's rows, in order."""
    return [tuple(r) for r in driver.execute_script(
        "return [...document.querySelectorAll('#models tbody tr')].map(tr => [tr.dataset.model, tr.cells[1].textContent]);")]


def _set(driver, element_id: str, value: str) -> None:
    el = driver.find_element(By.ID, element_id)
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.DELETE)  # typed, as a user would: el.clear() fires no input event
    if value:
        el.send_keys(value)


def test_loads_without_console_errors(browser) -> None:
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#models tbody tr"), "table rows")
    assert browser.find_element(By.ID, "device").get_attribute("value") == DEVICE
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_sorting_a_column_reorders_the_rows(browser) -> None:
    before = _table(browser)
    browser.find_element(By.CSS_SELECTOR, "#models th[data-col='top1']").click()
    top1 = browser.execute_script(
        "const i = [...document.querySelectorAll('#models th')].findIndex(th => th.dataset.col === 'top1');"
        "return [...document.querySelectorAll('#models tbody tr')].map(tr => tr.cells[i].textContent);")
    shown = [float(v) for v in top1 if v]
    assert shown == sorted(shown) and len(shown) > 10
    assert all(v == "" for v in top1[len(shown):])  # unmeasured last
    assert _table(browser) != before
    browser.find_element(By.CSS_SELECTOR, "#models th[data-col='top1']").click()
    again = [float(v) for v in browser.execute_script(
        "const i = [...document.querySelectorAll('#models th')].findIndex(th => th.dataset.col === 'top1');"
        "return [...document.querySelectorAll('#models tbody tr')].map(tr => tr.cells[i].textContent);") if v]
    assert again == sorted(shown, reverse=True)


def test_a_filter_leaves_exactly_the_csv_rows(browser) -> None:
    df = pd.read_csv(ROOT / "results" / "data" / "measurements.csv")
    _set(browser, "f-name", "resnet")
    _set(browser, "f-median_ms-max", "5")
    _set(browser, "f-top1-min", "75")
    want = df[(df.device == DEVICE) & (df.input == INPUT) & df.model.str.contains("resnet")
              & (df.median_ms <= 5) & (df.top1 >= 75)]
    assert len(want) > 0
    got = _table(browser)
    assert sorted(got) == sorted(zip(want.model, want["mode"]))
    for element_id in ("f-name", "f-median_ms-max", "f-top1-min"):
        _set(browser, element_id, "")
    assert len(_table(browser)) == len(df[(df.device == DEVICE) & (df.input == INPUT)])


def test_hovering_a_pareto_point_names_its_model_and_a_click_opens_it(browser) -> None:
    point = browser.find_elements(By.CSS_SELECTOR, "#pareto .scatterlayer .trace")[2].find_elements(
        By.CSS_SELECTOR, "path.point")[0]
    model = browser.execute_script("return document.getElementById('pareto').data[2].text[0].split('<br>')[0];")
    ActionChains(browser).move_to_element(point).perform()
    label = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto .hoverlayer .hovertext"), "hover label")
    assert model in label[0].text and " ms" in label[0].text
    ActionChains(browser).click().perform()  # a click on the point opens its model
    _wait(browser, lambda d: model in d.find_element(By.ID, "model-title").text, "the point's model view")


def test_opening_a_model_draws_its_per_unit_chart(browser) -> None:
    units = pd.read_csv(ROOT / "results" / "data" / "units.csv")
    mine = units[(units.device == DEVICE) & (units.input == INPUT) & (units.model == "resnet50")
                 & (units["mode"] == "eager fp32") & (units.depth == 1) & (units.output_stride == 32)]
    assert len(mine) > 1
    row = browser.find_element(By.CSS_SELECTOR, "#models tbody tr[data-model='resnet50']")
    browser.execute_script("arguments[0].scrollIntoView();", row)
    browser.find_elements(By.XPATH, "//table[@id='models']/tbody/tr[@data-model='resnet50'][td[2]='eager fp32']")[0].click()
    bars = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#units-chart .bars path"), "per-unit bars")
    assert len(bars) == len(mine)
    assert "resnet50" in browser.find_element(By.ID, "model-title").text
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#model-links a")]
    assert any(h.endswith(".txt") for h in links)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_a_cpu_zoo_shows_in_the_device_and_input_selectors(browser, tmp_path: Path) -> None:
    """A page rendered from a CPU zoo sweep's records (tests/test_zoo_cpu.py's synthetic ones):
    the CPU is a device to pick, and picking it offers its two inputs and shows its rows."""
    from common.render import page
    from tests.test_zoo_cpu import CPU, _sweep, cpu_dataset

    _sweep(tmp_path / "results")
    measurements, units = cpu_dataset(tmp_path / "results")
    out = tmp_path / "page"
    out.mkdir()
    (out / "index.html").write_text(page.html_page(measurements, units, ".."))
    (out / page.PLOTLY).write_bytes(next(iter(page.assets(out).values())))

    def options(element_id: str) -> list[str]:
        return browser.execute_script(f"return [...document.getElementById('{element_id}').options].map(o => o.value);")

    browser.get((out / "index.html").as_uri())
    _wait(browser, lambda d: CPU in options("device"), "the CPU among the devices")
    Select(browser.find_element(By.ID, "device")).select_by_value(CPU)
    _wait(browser, lambda d: sorted(options("input")) == ["imagenet", "pascal"], "the CPU's two inputs")
    Select(browser.find_element(By.ID, "input")).select_by_value("pascal")
    df = pd.read_csv(io.StringIO(measurements))
    want = df[(df.device == CPU) & (df.input == "pascal")]
    _wait(browser, lambda d: sorted(_table(d)) == sorted(zip(want.model, want["mode"])), "the CPU's pascal rows")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
