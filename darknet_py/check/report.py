"""What `detector check` found: one :class:`Finding` per problem, grouped by check in a :class:`CheckReport`.

Every finding names the file (and line) it is about and the :class:`~darknet_py.errors.DarknetError`
subclass it would be if it stopped a command, so the checker speaks the project's one error model. Errors
make the check fail; warnings are things Darknet tolerates (often silently) that a user should know about.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from ..errors import DarknetError
from ..flavor import Flavor

ERROR, WARNING = "error", "warning"

# The checks in the order the summary table lists them: code -> what a passing check means.
CHECKS = (
    ("data", ".data keys resolve"),
    ("names", "names count == classes"),
    ("backup", "backup directory writable"),
    ("list", "list files readable"),
    ("list-duplicate", "each image listed once"),
    ("image-missing", "images exist"),
    ("image-unreadable", "images decode"),
    ("label-missing", "label file found"),
    ("label-parse", "label lines parse"),
    ("label-class", "class ids < classes"),
    ("label-range", "coordinates in (0,1], w/h > 0"),
    ("label-dropped", "boxes Darknet keeps"),
    ("label-duplicate", "no duplicate label lines"),
    ("labels-empty", "train pictures have boxes"),
    ("class-unused", "every class has boxes"),
    ("cfg", "cfg parses and builds"),
    ("cfg-keys", "every cfg key implemented"),
    ("cfg-classes", "[yolo] classes == .data classes"),
    ("cfg-filters", "filters = (classes+5)*len(mask)"),
    ("anchors", "anchors fit the boxes"),
)
CHECK_TITLES = dict(CHECKS)


@dataclass(frozen=True)
class Finding:
    code: str                      # one of CHECKS
    severity: str                  # ERROR or WARNING
    message: str
    error_type: type[DarknetError]
    file: Optional[str] = None
    line: Optional[int] = None
    value: Optional[str] = None
    hint: Optional[str] = None

    def as_error(self) -> DarknetError:
        return self.error_type(self.message, file=self.file, line=self.line, value=self.value, hint=self.hint)

    def __str__(self) -> str:
        return str(self.as_error())


@dataclass
class CheckReport:
    data_file: str
    flavor: Flavor
    fast: bool
    cfg_file: Optional[str] = None
    findings: list[Finding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)     # check code -> why it did not run
    stats: dict[str, object] = field(default_factory=dict)    # counts for the summary (images, boxes, ...)
    model: Optional[object] = None                            # the parsed cfg (detector train trains it)

    def add(self, code: str, severity: str, message: str, error_type: type[DarknetError], **where) -> None:
        if code not in CHECK_TITLES:
            raise ValueError(f"unknown check code {code!r}")
        self.findings.append(Finding(code, severity, message, error_type, **where))

    def add_exception(self, code: str, exc: DarknetError) -> None:
        """A reader's error, kept as an error finding so the check goes on to report everything else."""
        self.add(code, ERROR, exc.message, type(exc), file=exc.file, line=exc.line, value=exc.value, hint=exc.hint)

    def skip(self, code: str, why: str) -> None:
        self.skipped.setdefault(code, why)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def format(self, examples: int = 3) -> str:
        """The summary table, then the first ``examples`` findings of each failing check."""
        return "\n".join(self._header() + self._table() + self._details(examples) + [self._verdict()])

    def format_findings(self, examples: int = 3) -> str:
        """Only the findings and the verdict (what `detector train` shows before it starts)."""
        return "\n".join(self._details(examples) + [self._verdict()]).strip("\n")

    def _header(self) -> list[str]:
        mode = "fast (no image decoding)" if self.fast else "full"
        lines = [f"darknet_py detector check: {self.data_file}"
                 + (f" {self.cfg_file}" if self.cfg_file else "") + f"  [flavor {self.flavor}, {mode}]"]
        lines += [f"  {key}: {value}" for key, value in self.stats.items()]
        return lines + [""]

    def _table(self) -> list[str]:
        counts = Counter((f.code, f.severity) for f in self.findings)
        rows = [f"  {'check':<34s} {'result':<8s} {'count':>7s}"]
        for code, title in CHECKS:
            errors, warnings = counts[(code, ERROR)], counts[(code, WARNING)]
            if errors:
                result, count = "ERROR", errors + warnings
            elif warnings:
                result, count = "warning", warnings
            elif code in self.skipped:
                result, count = "skipped", 0
            else:
                result, count = "ok", 0
            rows.append(f"  {title:<34s} {result:<8s} {count:>7d}"
                        + (f"  ({self.skipped[code]})" if result == "skipped" else ""))
        return rows

    def _details(self, examples: int) -> list[str]:
        lines = []
        for code, title in CHECKS:
            found = self.by_code(code)
            if not found:
                continue
            lines.append(f"\n{title}: {len(found)} finding(s)")
            for finding in found[:examples]:
                text = str(finding).replace("\n", "\n    ")
                lines.append(f"  {finding.severity}: {text}")
            if len(found) > examples:
                lines.append(f"  ... and {len(found) - examples} more")
        return lines

    def _verdict(self) -> str:
        errors, warnings = len(self.errors), len(self.warnings)
        state = "FAILED" if errors else "passed"
        return f"\ncheck {state}: {errors} error(s), {warnings} warning(s)"
