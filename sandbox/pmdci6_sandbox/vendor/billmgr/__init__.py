"""Stand-in for ISPsystem's BILLmanager Python library (`billmanager-plugin-python-libs`).

Same module and function names and signatures as the public copy
(github.com/ea0hw33/billmgr, billmgr/{misc,db,exception,logger}.py), backed by the sandbox
store. BillmgrHost.create() copies this package to <root>/lib/python/billmgr; the root is
found from this file's location, as the real one hard-codes /usr/local/mgr5.
"""

import os
import sys
from pathlib import Path

MGR_ROOT = Path(__file__).resolve().parents[3]
LIB_PATH = str(MGR_ROOT / "lib" / "python")
if LIB_PATH not in sys.path:
    sys.path.insert(0, LIB_PATH)

BINARY_NAME = os.path.splitext(os.path.basename(sys.argv[0]))[0]
