"""Edit methods as plug-ins: one file per method, each registered by name (``base.register``).

``METHODS`` maps a name to its :class:`~textedit.methods.base.EditMethod` subclass, a frozen
dataclass of the method's hyperparameters with its closed-form ``solve``. Every module of this
folder is imported here, in name order, and registers its method: a new method is one new
file. A method defined elsewhere registers itself the same way (``@register``).
"""

import importlib
import pkgutil

from .base import (METHODS, EditMethod, LayerProblem, State, chaining_methods, method_class, methods_with,
                   register, remembering_methods)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["METHODS", "EditMethod", "LayerProblem", "State", "chaining_methods", "method_class", "methods_with",
           "register", "remembering_methods"]
