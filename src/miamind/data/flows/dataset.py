"""A dataset of flow-feature CSV files: what ``cicids2017`` and ``cicids2017_improved`` share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .check import summarise_for_check
from .files import PathLike, PathsArg, locate_csv_folder, resolve_files
from .layout import FlowLayout
from .read import DEFAULT_CHUNKSIZE, read_flow_files
from .table import FlowTable, cached_table


@dataclass(frozen=True)
class CsvFlowDataset:
    """Where a dataset's CSV copies sit, which layouts and labels they may hold, and the steps
    every such dataset takes: locate, read, cache the parsed table, check.

    The dataset modules' public functions (``locate``, ``read_flows``, ``load_table``, ``check``)
    call these with the module's own instance; their loaders split ``load_table``'s table with
    ``make_splits``.
    """

    name: str
    folders: tuple[str, ...]  # under the data root, searched in order
    how_to_obtain: str
    layouts: tuple[FlowLayout, ...]
    labels: tuple[str, ...]

    def locate(self, data_dir: PathLike | None = None) -> Path:
        """The first of ``folders`` under the data root that holds CSV files directly."""
        return locate_csv_folder(self.name, self.folders, data_dir, self.how_to_obtain)

    def read(
        self,
        paths_or_folder: PathsArg,
        *,
        layout: str = "auto",
        nonfinite: str = "drop",
        chunksize: int = DEFAULT_CHUNKSIZE,
    ) -> FlowTable:
        """Read CSV file(s) or a folder of this dataset (see ``read_flow_files``)."""
        return read_flow_files(
            paths_or_folder,
            self.layouts,
            self.labels,
            layout=layout,
            nonfinite=nonfinite,
            chunksize=chunksize,
        )

    def load_table(
        self,
        data_dir: PathLike | None = None,
        *,
        path: PathsArg | None = None,
        layout: str | None = None,
        cache_dir: Path | None = None,
        chunksize: int = DEFAULT_CHUNKSIZE,
    ) -> FlowTable:
        """The parsed table, non-finite rows kept (the policy is applied after the split); cached.

        ``layout`` None reads with "auto" and leaves the layout out of the cache key (a dataset
        with one layout never named it there, so its cached tables stay valid).
        """
        files = resolve_files(path if path is not None else self.locate(data_dir))
        options: dict[str, object] = {"nonfinite": "keep"}
        if layout is not None:
            options["layout"] = layout
        return cached_table(
            self.name,
            files,
            lambda: self.read(files, layout=layout or "auto", nonfinite="keep", chunksize=chunksize),
            options,
            cache_dir,
        )

    def check(self, path: PathsArg) -> dict:
        """Validate file(s) or a folder; DataError (file, line, what) on bad input."""
        files = resolve_files(path)
        return {"dataset": self.name, **summarise_for_check(self.read(files, nonfinite="keep"), files)}
