"""Type stubs of the compiled module ``edgectl._core`` (checked by mypy.stubtest)."""

__all__ = ["__version__", "check_dt"]
__version__: str

def check_dt(dt_s: float) -> None:
    """Raise InvalidInputError unless ``dt_s`` is finite and > 0."""
