"""awing: facial landmark localisation with the Adaptive Wing loss (Wang, Bo, Fuxin, ICCV 2019)."""

__version__ = "0.1.0"


def __getattr__(name: str):  # keep ``import awing`` light; FaceAligner pulls in the model stack
    if name == "FaceAligner":
        from awing.app.api import FaceAligner

        return FaceAligner
    raise AttributeError(f"module 'awing' has no attribute {name!r}")
