"""mkdocs hooks: generated tables in the pages, and math rendered to MathML at build time.

- `<!-- table: NAME -->` and `<!-- results: NAME -->` lines become the tables docs/tables.py
  makes from the registry and benchmarks/results, so no figure is copied by hand.
- `$...$` and `$$...$$` (pymdownx.arithmatex, generic mode) become MathML, which browsers
  render themselves: the site needs no math script from a CDN and works offline.
"""

import html
import importlib.util
import re
from pathlib import Path

from latex2mathml.converter import convert as to_mathml

_spec = importlib.util.spec_from_file_location("lqm_doc_tables", Path(__file__).with_name("tables.py"))
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def on_page_markdown(markdown, page, config, files):
    return tables.expand(markdown, page.file.src_uri)


def on_page_content(content, page, config, files):
    content = _BLOCK.sub(lambda m: to_mathml(html.unescape(m.group(1)), display="block"), content)
    return _INLINE.sub(lambda m: to_mathml(html.unescape(m.group(1))), content)
