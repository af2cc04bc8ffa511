"""Reading `.npz` files that may be damaged: every way numpy and zipfile can fail becomes one `DataError`.

np.load on a damaged archive can raise far more than OSError (a mutation fuzz found NotImplementedError for an
unknown zip version, RuntimeError for a member flagged as encrypted, tokenize.TokenError from a damaged .npy
header); each one is a damaged file to the
user, named with the path. Arrays are read eagerly, with allow_pickle=False: no object arrays, no code.
"""

from __future__ import annotations

import struct
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from insitu.errors import DataError

#: Everything np.load / NpzFile.__getitem__ raise on a damaged or hostile archive (not on a bug of ours).
DAMAGED = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
           RuntimeError, zlib.error, struct.error, OverflowError, MemoryError, UnicodeError, SyntaxError,
           tokenize.TokenError, RecursionError)


def load_arrays(path: Path, what: str, fix: str) -> dict[str, np.ndarray]:
    """All arrays of the archive at `path`; `what` names the file's role in the error ("dataset", ...)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{what} {path} is a single .npy array, not an .npz archive", fix)
        with z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist", fix) from None
    except IsADirectoryError:
        raise DataError(f"{what} {path} is a folder, not an .npz file", fix) from None
    except DAMAGED as exc:
        raise DataError(f"cannot read {what} {path} as .npz ({type(exc).__name__}: {exc})", fix) from None
