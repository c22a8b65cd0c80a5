"""The vendor logger's interface (billmgr/logger.py): get_logger(name).extinfo(...) etc.

The real one appends to var/<logfile>.log under the BILLmanager root at the level from
etc/debug.conf; the stand-in writes <root>/var/billmgr-vendor.log (0600) at info.
"""

import logging
import os
from enum import Enum

from billmgr import MGR_ROOT


class Level(Enum):
    DEBUG = logging.DEBUG
    EXTINFO = 15
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL


logfile_name = "billmgr-vendor"


def init_logging(logfile: str):
    global logfile_name
    logfile_name = logfile


def get_logger(name):
    return Logger(name)


class Logger:
    def __init__(self, name):
        logging.addLevelName(Level.EXTINFO.value, Level.EXTINFO.name)
        self.__logger = logging.getLogger(f"billmgr.vendor.{name}")
        self.__logger.setLevel(Level.INFO.value)
        self.__logger.propagate = False
        path = MGR_ROOT / "var" / f"{logfile_name}.log"
        if not self.__logger.handlers and path.parent.is_dir():
            fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
            os.close(fd)
            handler = logging.FileHandler(path)
            handler.setFormatter(
                logging.Formatter("%(asctime)-15s [%(process)d] %(name)s %(levelname)s %(message)s")
            )
            self.__logger.addHandler(handler)

    def critical(self, msg, *args):
        self.__logger.log(Level.CRITICAL.value, msg, *args)

    def error(self, msg, *args):
        self.__logger.log(Level.ERROR.value, msg, *args)

    def warning(self, msg, *args):
        self.__logger.log(Level.WARNING.value, msg, *args)

    def info(self, msg, *args):
        self.__logger.log(Level.INFO.value, msg, *args)

    def extinfo(self, msg, *args):
        self.__logger.log(Level.EXTINFO.value, msg, *args)

    def debug(self, msg, *args):
        self.__logger.log(Level.DEBUG.value, msg, *args)
