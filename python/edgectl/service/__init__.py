"""Running a reactor as a system service: the systemd unit, udev names, sd_notify watchdog.

:mod:`edgectl.service.notify` feeds systemd's watchdog from the scan;
:mod:`edgectl.service.units` renders the unit and udev rules that ``edgectl service install``
writes.
"""

from edgectl.service.notify import Notifier, ScanWatchdog, scan_watchdog, watchdog_interval_s

__all__ = ["Notifier", "ScanWatchdog", "scan_watchdog", "watchdog_interval_s"]
