"""Report writers: ``report.json`` / ``samples.jsonl`` / ``paintings.jsonl`` (:mod:`.files`),
``report.md`` and the terminal summary (:mod:`.markdown`), the figures (:mod:`.figures`)."""
