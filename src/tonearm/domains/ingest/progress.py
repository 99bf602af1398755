"""A progress bar around a bulk import, shared by `tonearm import` and `tonearm demo`."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from tonearm.domains.ingest.importer import Importer, ImportReport


def import_with_progress(
    importer: Importer, directory: Path, *, transcode: bool, workers: int = 2
) -> ImportReport:
    with tqdm(unit="file", desc="importing", file=sys.stderr) as bar:

        def on_total(n: int) -> None:
            bar.total = n
            bar.refresh()

        def progress(n: int, failed: int) -> None:
            bar.update(n)
            bar.set_postfix(failed=failed)

        return importer.run(
            directory, transcode=transcode, workers=workers, on_total=on_total, progress=progress
        )
