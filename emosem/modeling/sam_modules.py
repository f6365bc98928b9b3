"""SAM's modules without ``segment_anything``'s package ``__init__``.

``segment_anything/__init__.py`` imports its ``SamPredictor`` and ``SamAutomaticMaskGenerator``,
which import torchvision, which imports ``torch._dynamo`` and sympy: seconds of a cold start
that the mask path never uses (it needs ``segment_anything.modeling`` and ``build_sam``, plain
torch). Python runs a package's ``__init__`` before any submodule, so
:func:`register_package_without_init` puts the package into ``sys.modules`` unexecuted: its
submodules import as usual (same module objects, same classes as everywhere else), and the
``__init__`` runs the first time someone asks the package itself for a name
(``from segment_anything import SamPredictor`` still works). Where ``segment_anything`` was
imported already, nothing changes.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

PACKAGE = "segment_anything"
_lock = threading.Lock()


def register_package_without_init(name: str = PACKAGE) -> ModuleType:
    """The package ``name`` in ``sys.modules``: as imported, or registered with its ``__init__``
    deferred to the first lookup of a name it does not yet have."""
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} is not installed: pip install segment-anything")
        package = importlib.util.module_from_spec(spec)

        def run_init(attr: str):
            if attr.startswith("__") and attr.endswith("__"):  # introspection, not a lookup
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            with _lock:
                if vars(package).pop("__getattr__", None) is not None:
                    spec.loader.exec_module(package)
            return getattr(package, attr)

        package.__getattr__ = run_init
        sys.modules[name] = package
        return package


register_package_without_init()

from segment_anything.build_sam import (  # noqa: E402  (after the registration above)
    build_sam_vit_b,
    build_sam_vit_h,
    build_sam_vit_l,
)
from segment_anything.modeling import (  # noqa: E402
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

__all__ = ["ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam", "TwoWayTransformer",
           "build_sam_vit_b", "build_sam_vit_h", "build_sam_vit_l", "register_package_without_init"]
