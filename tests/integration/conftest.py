from tests.stack import stack

__all__ = ["stack"]
