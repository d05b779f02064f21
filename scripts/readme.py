"""Write README.md from nbs/index.ipynb (settings.ini's `readme_nb`): its markdown cells, in order, joined by blank
lines. nbdev's own `nbdev_readme` needs Quarto, which this project does not install; this is the same idea with no
dependency. `python scripts/readme.py` rewrites README.md; `--check` exits 1 when README.md differs (a test in
nbs/index.ipynb does that too, so the two cannot drift apart)."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def render(nb: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    "The README text of the index notebook: its markdown cells joined by blank lines."
    cells = json.loads(nb.read_text())['cells']
    parts = [''.join(c['source']).strip('\n') for c in cells if c['cell_type'] == 'markdown']
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.is_file() and readme.read_text() == text
        print('README.md matches nbs/index.ipynb' if ok else 'README.md differs from nbs/index.ipynb: run python scripts/readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text)
    print(f'wrote {readme} from nbs/index.ipynb')
