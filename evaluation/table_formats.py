"""Paper tables as Markdown and LaTeX (``booktabs``). Pure module: strings in, strings out, no Django.

A :class:`DisplayTable` is what a paper prints: a caption, column headings, rows of already formatted
cells and notes under the table. The LaTeX needs ``\\usepackage{booktabs}`` (the file says so in a
comment); cells are escaped, so a model name like ``qwen_7b-ft`` or ``50 %`` typesets as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_LATEX_SYMBOLS = {"±": r"$\pm$", "−": r"$-$", "≥": r"$\geq$", "α": r"$\alpha$", "κ": r"$\kappa$", "Δ": r"$\Delta$"}


@dataclass(frozen=True)
class DisplayTable:
    name: str  # a file-name-safe identifier, e.g. "miti_by_source"
    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    notes: Sequence[str] = field(default_factory=tuple)
    numeric_from: int = 1  # columns from this index on are right-aligned


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for symbol, command in _LATEX_SYMBOLS.items():
        out = out.replace(symbol, command)
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def to_markdown(tables: Sequence[DisplayTable]) -> str:
    parts: list[str] = []
    for table in tables:
        lines = [f"**{_md_cell(table.caption)}**", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in table.header) + " |")
        lines.append(
            "|" + "|".join("---:" if i >= table.numeric_from else ":---" for i in range(len(table.header))) + "|"
        )
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        if not table.rows:
            lines.append("| " + " | ".join(["—"] * len(table.header)) + " |")
        lines += ["", *[f"*{_md_cell(note)}*" for note in table.notes]]
        parts.append("\n".join(lines).rstrip() + "\n")
    return "\n".join(parts)


def to_latex(tables: Sequence[DisplayTable]) -> str:
    parts = ["% Paper tables from MI Platform. Needs \\usepackage{booktabs} in the preamble.\n"]
    for table in tables:
        align = "".join("r" if i >= table.numeric_from else "l" for i in range(len(table.header)))
        lines = [
            "\\begin{table}[htbp]",
            "\\centering",
            f"\\caption{{{latex_escape(table.caption)}}}",
            f"\\label{{tab:{table.name}}}",
            f"\\begin{{tabular}}{{{align}}}",
            "\\toprule",
            " & ".join(latex_escape(h) for h in table.header) + " \\\\",
            "\\midrule",
        ]
        lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in table.rows]
        lines += ["\\bottomrule", "\\end{tabular}"]
        if table.notes:
            lines.append("\\par\\smallskip\\footnotesize " + " ".join(latex_escape(n) for n in table.notes))
        lines.append("\\end{table}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
