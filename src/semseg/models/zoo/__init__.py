"""Registered model builders, one module per family. Importing this package imports every
module in it, so a new family only needs a new file with ``@register_model`` builders."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
