"""Plain-Python domain logic. Nothing in this package may import dagster.

The ingestion modules live in the ``ingest`` sub-package. Their former top-level paths
(``dlcot_dagster.domain.schema``, ``.sources``, ``.readers``, ``.normalize``, ``.seen_ids``) still import, as
aliases of the same module objects, so code written against them keeps working.
"""

import importlib
import importlib.abc
import importlib.util
import sys

_MOVED = {f"{__name__}.{m}": f"{__name__}.ingest.{m}" for m in ("schema", "sources", "readers", "normalize", "seen_ids")}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:  # the target module is already executed
        pass


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in _MOVED:
            return importlib.util.spec_from_loader(fullname, _AliasLoader(_MOVED[fullname]))
        return None


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())
