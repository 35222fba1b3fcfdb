"""A batch run as a matrix: one row per dialogue, one column per model x template, each cell the
summary (with ROUGE-1 where there is a reference); rendered by templates/batch_matrix.html
(autoescaped) for the page and as a self-contained HTML file that opens offline from disk."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import jinja2

from ..data import Example

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Cell:
    summary: str
    rouge1: float | None = None
    error: str = ""

    @property
    def key(self) -> str:
        # An error differs from every summary, an empty one included.
        return "\0error" if self.error else self.summary.strip()


@dataclass(frozen=True)
class MatrixRow:
    id: str
    topic: str
    dialogue: str
    references: tuple[str, ...]
    cells: tuple[Cell | None, ...]  # None: that model x template gave no row for this dialogue

    @property
    def differs(self) -> bool:
        """The summaries are not all the same (an error or a missing cell counts as different)."""
        return len({cell.key if cell is not None else "\0missing" for cell in self.cells}) > 1


@dataclass(frozen=True)
class Matrix:
    source: str  # what was summarized, as shown to the user
    columns: tuple[tuple[str, str], ...]  # (model, template), in run order
    rows: tuple[MatrixRow, ...]
    filtered: bool = False  # rows left out where every summary is the same

    def only_differing(self) -> "Matrix":
        return replace(self, rows=tuple(r for r in self.rows if r.differs), filtered=True)

    @property
    def differing(self) -> int:
        return sum(1 for r in self.rows if r.differs)

    def to_dict(self) -> dict:
        return {"source": self.source, "filtered": self.filtered,
                "columns": [{"model": m, "template": t} for m, t in self.columns],
                "rows": [{**asdict(r), "differs": r.differs} for r in self.rows]}


def build_matrix(rows: Sequence[dict], examples: Sequence[Example], source: str) -> Matrix:
    """`rows` are the batch's per-summary rows (id, model, template, summary, rouge1, error)."""
    columns = tuple(dict.fromkeys((r["model"], r["template"]) for r in rows))
    found = {(r["id"], r["model"], r["template"]): r for r in rows}
    matrix_rows = []
    for example in examples:
        cells = []
        for model, template in columns:
            row = found.get((example.id, model, template))
            cells.append(None if row is None else
                         Cell(row["summary"] or "", row.get("rouge1"), row.get("error") or ""))
        matrix_rows.append(MatrixRow(example.id, example.topic or "", example.dialogue,
                                     tuple(example.references), tuple(cells)))
    return Matrix(source, columns, tuple(matrix_rows))


def render_matrix(matrix: Matrix, standalone: bool = False) -> str:
    """The matrix as HTML: a fragment for the page, or (standalone) a whole document with its CSS
    inline and a Content-Security-Policy that lets it load nothing and run no script."""
    return _TEMPLATES.get_template("batch_matrix.html").render(matrix=matrix, standalone=standalone)


def write_exports(matrix: Matrix, folder: Path, stem: str) -> tuple[Path, Path]:
    """The matrix as one self-contained HTML file and as JSON, each written whole or not at all."""
    html_path = _atomic_write(folder / f"matrix-{stem}.html", render_matrix(matrix, standalone=True))
    json_path = _atomic_write(folder / f"matrix-{stem}.json",
                              json.dumps(matrix.to_dict(), ensure_ascii=False, indent=1))
    return html_path, json_path


def _atomic_write(path: Path, text: str) -> Path:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
