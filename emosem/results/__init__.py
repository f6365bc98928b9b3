"""The published numbers: the reports behind the README's tables, kept in the tree.

    python tools/results.py record eval-masks   # run the manifest's command, keep its report
    python tools/results.py docs                # rewrite the README's marked tables (make docs)

:mod:`.manifest` reads ``docs/results/reports.yaml`` (each report's one command and output),
:mod:`.record` runs a command and writes ``docs/results/NAME.json`` with the command, the commit
and the machine, :mod:`.render` fills the README's marked blocks from those reports and refuses a
number that has none.
"""

from emosem.results.manifest import ReportSpec, ResultsError, load_manifest
from emosem.results.record import record_report

__all__ = ["ReportSpec", "ResultsError", "load_manifest", "record_report"]
