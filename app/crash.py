"""Last-resort error handling: log every uncaught exception and tell the user
in a dialog with copyable details, instead of dying silently."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger("footnote.crash")


class CrashReporter(QObject):
    # Marshals reports from any thread to the GUI thread.
    _report = Signal(str, str)

    def __init__(self, log_folder: str) -> None:
        super().__init__()
        self._log_folder = log_folder
        self._report.connect(self._show)
        self._showing = False

    def install(self) -> None:
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        """Back to the defaults: once the event loop has ended a dialog
        could never be answered."""
        sys.excepthook = sys.__excepthook__
        threading.excepthook = threading.__excepthook__

    def _excepthook(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        details = "".join(traceback.format_exception(kind, value, tb))
        log.critical("uncaught exception\n%s", details)
        self._report.emit(f"{kind.__name__}: {value}", details)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self._excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    @Slot(str, str)
    def _show(self, summary: str, details: str) -> None:
        if self._showing:  # one dialog at a time; the rest is in the log
            return
        self._showing = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, "Footnote hit a problem", "")
            box.setText(
                "Something went wrong inside Footnote. Your conversations are saved.\n\n"
                f"If it keeps happening, please report it with the log from:\n{self._log_folder}"
            )
            box.setInformativeText(summary)
            box.setDetailedText(details)
            box.exec()
        finally:
            self._showing = False
