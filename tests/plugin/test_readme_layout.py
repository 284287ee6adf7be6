"""The README's layout section names what the checkout holds: every tracked top-level folder and
script, every module and sub-package of the plugin, and every page of ``docs/``."""

import re
import subprocess

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
LAYOUT = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
CONFIGURATION = {"README.md", "setup.cfg", "pyproject.toml"}  # the install's own files


def tracked_top_level() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return {path.split("/")[0] for path in files.splitlines() if not path.startswith(".")} - CONFIGURATION


def test_every_top_level_folder_and_script_is_in_the_layout():
    named = {name.rstrip("/") for name in re.findall(r"^`?([\w.]+/?)", LAYOUT, flags=re.M)}
    assert tracked_top_level() <= named


def test_every_module_of_the_plugin_is_in_the_layout():
    package = REPO_ROOT / "recbole_sdmtmp"
    modules = {path.name for path in package.glob("*.py") if path.name != "__main__.py"}
    folders = {f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").is_file()}
    missing = [name for name in sorted(modules | folders) if name not in LAYOUT]
    assert missing == []


def test_every_doc_page_is_listed():
    assert [page.name for page in sorted((REPO_ROOT / "docs").glob("*.md")) if f"`{page.name}`" not in LAYOUT] == []
