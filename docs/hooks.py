"""mkdocs hooks: generated tables in the pages, and math rendered to MathML at build time.

- `<!-- table: NAME -->`, `<!-- results: NAME -->` and `<!-- compare: NAME -->` lines become
  the tables docs/tables.py makes from the registry and benchmarks/results, so no figure is
  copied by hand.
- `$...$` and `$$...$$` (pymdownx.arithmatex, generic mode) become MathML, which browsers
  render themselves: the site needs no math script from a CDN and works offline. The
  docstrings' math (written for MathJax) is rendered the same way.
"""

import html
import importlib.util
import logging
import re
from pathlib import Path

from latex2mathml.converter import convert as to_mathml
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import InclusionLevel

_spec = importlib.util.spec_from_file_location("lqm_doc_tables", Path(__file__).with_name("tables.py"))
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

log = logging.getLogger("mkdocs.hooks.math")

_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def _mathml(latex: str, display: str = "inline") -> str:
    try:
        return to_mathml(html.unescape(latex), display=display)
    except Exception as e:  # a strict build fails on the warning, naming the formula
        log.warning("cannot render the math %r: %s", latex, e)
        return latex


class _DocstringMath(Preprocessor):
    r"""Docstrings write math for MathJax through Markdown, as `\\( ... \\)` and
    `\\[ ... \\]`; turned into `\( ... \)` and `\[ ... \]`, arithmatex keeps them whole
    (no emphasis inside) and they become MathML like the pages' math."""

    def run(self, lines):
        return [re.sub(r"\\\\([\[\]()])", r"\\\1", line) for line in lines]


class _DocstringMathExtension(Extension):
    def extendMarkdown(self, md):
        md.preprocessors.register(_DocstringMath(md), "lqm_docstring_math", 40)


@event_priority(100)  # before mkdocstrings reads the extensions
def on_config(config):
    config.markdown_extensions.append(_DocstringMathExtension())
    return config


def on_files(files, config):
    """The generated API navigation file is read by literate-nav, not published as a page."""
    summary = files.get_file_from_path("api/SUMMARY.md")
    if summary is not None:
        summary.inclusion = InclusionLevel.EXCLUDED
    return files


def on_page_markdown(markdown, page, config, files):
    return tables.expand(markdown, page.file.src_uri)


def on_page_content(content, page, config, files):
    content = _BLOCK.sub(lambda m: _mathml(m.group(1), "block"), content)
    return _INLINE.sub(lambda m: _mathml(m.group(1)), content)
