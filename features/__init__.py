"""The lakehouse feature store: ingestion, dbt on Spark, Feast, MLlib, SQL on predictions."""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"

# Set to 1 to keep Feast's run-time type checks (see _feast_without_type_checks).
FEAST_TYPE_CHECKS_ENV = "LAKEHOUSE_FEAST_TYPE_CHECKS"


def _feast_without_type_checks() -> None:
    """Import Feast as an optimized Python (``-O``) would: without typeguard's checks.

    Feast decorates its classes and functions with typeguard's ``@typechecked``, which
    rewrites and recompiles each of them at import, every time a process imports Feast (the
    compiled files cannot hold the rewrite): about a third of what the daily job's
    libraries cost to import, 2-3 s of CPU in every fresh process (bench/RESULTS.md).
    typeguard leaves the target as it is when Python runs optimized; the lake's processes
    take that behaviour for Feast's modules, as Feast's import begins (:class:`_BeforeFeast`;
    any other caller's decorator checks as before).  Feast's results are the same; a wrong
    argument type fails where it is used instead of at the call.
    ``LAKEHOUSE_FEAST_TYPE_CHECKS=1`` keeps the checks (developing against Feast).
    """
    try:
        import typeguard
    except ImportError:  # typeguard comes with Feast; without it there is nothing to skip
        return

    checked = typeguard.typechecked

    def typechecked(target=None, **options):  # noqa: ANN001, ANN202 - typeguard's signature
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller != "feast" and not caller.startswith("feast."):
            return checked(target, **options)  # anyone else's checks stay
        return (lambda decorated: decorated) if target is None else target

    typeguard.typechecked = typechecked


class _BeforeFeast:
    """An import hook that runs :func:`_feast_without_type_checks` when Feast's own import
    begins, then leaves: a process that never imports Feast does not import typeguard
    either (about 0.1 s), and the daily job imports both beside the JVM's launch."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "feast" and self in sys.meta_path:
            sys.meta_path.remove(self)
            _feast_without_type_checks()
        # None: the import goes on through the usual finders.


if os.environ.get(FEAST_TYPE_CHECKS_ENV) != "1" and "feast" not in sys.modules:
    sys.meta_path.insert(0, _BeforeFeast())
