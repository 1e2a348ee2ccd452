"""Pages made at build time (mkdocs-gen-files): the API reference, one page per public module
of `larq_methods` and `zoo`, found by walking the packages' folders (so a renamed or new
module needs no page edit), and the result plots copied from benchmarks/results.

Nothing is imported: mkdocstrings reads the sources statically.
"""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("larq_methods", "zoo")


def public_modules(package: str) -> list[str]:
    """Dotted names of the package and of every module and subpackage below it whose
    name does not start with an underscore, sorted."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return sorted(names)


def api_pages():
    nav = mkdocs_gen_files.Nav()
    for package in PACKAGES:
        for name in public_modules(package):
            parts = tuple(name.split("."))
            page = Path(*parts).with_suffix(".md")
            nav[parts] = page.as_posix()
            with mkdocs_gen_files.open(Path("api", page), "w") as f:
                f.write(f"::: {name}\n")
    with mkdocs_gen_files.open("api/SUMMARY.md", "w") as f:
        f.writelines(nav.build_literate_nav())


def result_images():
    results = ROOT / "benchmarks" / "results"
    images = {image.name: image for image in results.glob("*.png")}
    # each comparison's accuracy-latency plot, as results/compare-NAME.png
    images.update({f"compare-{image.parent.name}.png": image for image in results.glob("compare/*/accuracy_latency.png")})
    for name, image in sorted(images.items()):
        with mkdocs_gen_files.open(f"results/{name}", "wb") as f:
            f.write(image.read_bytes())


api_pages()
result_images()
