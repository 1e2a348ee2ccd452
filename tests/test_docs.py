"""The README and the documentation site, checked like code.

The site is built strictly from the current sources (mkdocs, `.[docs]`) into a temporary
folder, then opened in headless Chromium: the index, a guide and an API page must render
with their navigation, and every local file a rendered page references must exist in the
build. About 15 s in all.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LQM_CHROMIUM", "/usr/bin/chromium")


def _load_tables():
    spec = importlib.util.spec_from_file_location("lqm_doc_tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load_tables()


# -- the README -------------------------------------------------------------------------------


def test_the_readme_starts_with_the_two_set_up_commands_and_fits_on_a_screen():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")
    assert len(lines) <= 160


def test_the_readme_table_of_shipped_models_is_what_the_script_makes_now():
    """`python docs/tables.py` rewrites it from the registry and benchmarks/results."""
    text = (ROOT / "README.md").read_text()
    start, end = tables.readme_block(text)
    assert text[start:end] == tables.shipped_table()
    assert tables.main(["--check"]) == 0


def test_every_local_link_of_the_readme_names_a_file():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local and [link for link in local if not (ROOT / link).is_file()] == []


def test_the_shipped_table_has_one_row_per_shipped_model_with_its_figures():
    rows = {r["model"]: r for r in tables.shipped_rows()}
    registry = {e["model"]: e for e in tables.registry() if e["dataset"] == "fashion_mnist"}
    assert set(rows) == set(registry)
    r18 = rows["reactnet-18"]
    assert r18["twin"] == "float-resnet18" and len(r18["seeds"]) >= 1
    assert r18["gap"] == pytest.approx(registry["reactnet-18"]["accuracy"] - registry["float-resnet18"]["accuracy"])
    assert rows["float-resnet18"]["gap"] is None and rows["float-resnet18"]["latency"] is None
    # each family: its twin first, then its binary models
    order = [r["model"] for r in tables.shipped_rows()]
    assert order.index("float-resnet18") < order.index("reactnet-18")


def test_seed_accuracies_are_test_figures_in_compare_runs_and_earlier_studies(tmp_path):
    def write(folder, **files):
        folder.mkdir(parents=True)
        for name, obj in files.items():
            (folder / f"{name}.json").write_text(json.dumps(obj))

    for seed, (validation, test) in enumerate([(0.95, 0.91), (0.93, 0.92)]):  # compare: validation in results.json
        write(tmp_path / "cmp" / f"quicknet-s{seed}", results={"eval_accuracy": validation}, test={"accuracy": test})
    write(tmp_path / "cmp" / "quicknet-s2", test={"accuracy": 0.5})  # not finished: no results.json
    write(tmp_path / "study" / "birealnet-s0", results={"accuracy": 0.9})
    assert tables.seed_accuracies(str(tmp_path / "cmp" / "quicknet-s1"), "quicknet") == [0.91, 0.92]
    assert tables.seed_accuracies(str(tmp_path / "study" / "birealnet-s0"), "birealnet") == [0.9]


def test_a_compare_section_is_the_report_with_its_command_plot_and_machine(tmp_path, monkeypatch):
    folder = tmp_path / "compare" / "quicknet"
    folder.mkdir(parents=True)
    command = "lqm compare quicknet float-quicknet --seeds 2 -o benchmarks/results/compare/quicknet"
    (folder / "compare.json").write_text(json.dumps({"version": 1, "settings": {}, "command": command}))
    (folder / "report.md").write_text("# Comparison of quicknet, float-quicknet\n\nfashion_mnist, alpha 0.25.\n\n| model |\n|---|\n| quicknet |\n\n## Runs\n\n| run |\n")
    (folder / "accuracy_latency.png").write_bytes(b"\x89PNG")
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    page = tables.expand("## QuickNet\n\n<!-- compare: quicknet -->\n\nAfter.\n", "results.md")
    assert page.startswith(f"## QuickNet\n\nMade by `{command}` on {tables.MACHINE}.\n\nfashion_mnist, alpha 0.25.\n\n| model |\n")
    assert "# Comparison of" not in page and "\n#### Runs\n" in page  # under the page's headings
    assert "![quicknet: test accuracy against latency](results/compare-quicknet.png)\n\n\nAfter.\n" in page


def test_a_result_section_names_its_command_and_the_machine():
    section = tables.result_section("latency")
    assert "`python benchmarks/latency.py" in section and tables.MACHINE in section
    assert "| `reactnet-18` |" in section and "![latency](results/latency.png)" in section


def test_nothing_cites_notes_outside_the_repository():
    """Users have only the repository: no file may send them to ../shared or METHODS.md."""
    skip = {".git", ".venv", "site", "runs", "__pycache__", "node_modules"}
    cited = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if skip & set(parts) or any(part.endswith(".egg-info") for part in parts) or not path.is_file() or path.suffix in {".npz", ".png", ".h5", ".tflite"}:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if path == Path(__file__):
            text = text.replace("../shared or METHODS.md", "")  # this test's own docstring
        for needle in ("../" + "shared", "METHODS" + ".md"):
            if needle in text:
                cited.append(f"{path.relative_to(ROOT)}: {needle}")
    assert cited == []


# -- the site -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built strictly from the current sources."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]' (make test does)")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true", PYTHONPATH=str(ROOT))
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    return out


class _Refs(HTMLParser):
    """The local files a page loads or links to, and whether it has the site's navigation."""

    def __init__(self):
        super().__init__()
        self.refs, self.nav_links = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and "md-nav__link" in (attrs.get("class") or ""):
            self.nav_links += 1
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append(attrs[key])


def rendered(page: Path, tmp_path: Path) -> str:
    """The DOM after Chromium loaded `page` and ran its scripts."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI does)")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
        "--virtual-time-budget=3000", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def missing(page: Path, refs: list[str], site: Path) -> list[str]:
    """The local references of `page` that name no file of the built site."""
    out = []
    for ref in refs:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith(("#", "mailto:", "data:", "javascript:")):
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if parts.path and not (target.is_file() and target.is_relative_to(site.resolve())):
            out.append(ref)
    return out


@pytest.mark.parametrize("page", ["index.html", "guides/own-images.html", "api/zoo/pretrained.html"])
def test_pages_render_in_a_browser_with_navigation_and_every_asset(site, page, tmp_path):
    path = site / page
    assert path.is_file(), sorted(p.name for p in site.iterdir())
    dom = rendered(path, tmp_path)
    parser = _Refs()
    parser.feed(dom)
    assert parser.nav_links >= 10, "no navigation in the rendered page"
    assert re.search(r'<article class="md-content__inner[^"]*"', dom), "no page content"
    assert 'class="md-search' in dom  # the theme's scripts ran
    assert missing(path, parser.refs, site) == []
    remote = [r for r in parser.refs if r.startswith(("http://", "https://", "//")) and re.search(r"\.(js|css|woff2?)(\?|$)", r)]
    assert remote == [], "the site must work offline"


def test_the_api_reference_has_a_page_for_every_public_module(site):
    for package in ("larq_methods", "zoo"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            if any(p.startswith("_") for p in parts):
                continue
            page = site / "api" / Path(*parts).with_suffix(".html")
            assert page.is_file(), f"no API page for {'.'.join(parts)}"


def test_the_cli_reference_lists_every_command(site):
    from cli.main import lqm

    text = (site / "cli.html").read_text()
    for name, command in lqm.commands.items():
        assert f"lqm {name}" in text, name
        for option in (o for p in command.params for o in p.opts if o.startswith("--")):
            assert f"<code>{option}</code>" in text or option in text, (name, option)

